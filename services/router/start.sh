#!/bin/sh
# Router start (as root): routes, firewall, the declared impairments, then idle as socketlab.
# Captures, and impairments changed live, are started on demand by `docker compose exec router
# ...` (see docs/lab.md).
#
# Environment (compose.yaml sets them):
#   GUESTNET_V4 / GUESTNET_V6   the PowerPC guest's routed subnet
#   GUESTGW_V4 / GUESTGW_V6     client-ppc, the guest's gateway on clientnet
#   SERVERNET_V4 / CLIENTNET_V4 the subnets of the networks the router is on (impair.sh --net)
#   IMPAIR_<NET>                impair.sh options for what the router sends into NET, e.g.
#                               IMPAIR_CLIENTNET="--delay 20 --loss 3"; empty: none
#   IMPAIR_BACKEND              netem | nfqueue; empty: netem where the kernel has it
set -eu

say() { printf 'router: %s\n' "$*"; }

# Forwarding comes from compose `sysctls`; check instead of assuming.
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || { say "error: net.ipv4.ip_forward is off"; exit 1; }
[ "$(cat /proc/sys/net/ipv6/conf/all/forwarding)" = 1 ] || { say "error: IPv6 forwarding is off"; exit 1; }

# No way out of the lab (as host-start.sh): the router forwards between the lab's networks
# only; Docker's default route would lead to the other labs on this host.
while ip -4 route del default 2>/dev/null; do :; done
while ip -6 route del default 2>/dev/null; do :; done

# guestnet lives behind client-ppc. The next hop is on-link on clientnet,
# so the route is valid even while client-ppc is not running.
ip -4 route replace "${GUESTNET_V4:?lab.yaml sets it}" via "${GUESTGW_V4:?lab.yaml sets it}"
ip -6 route replace "${GUESTNET_V6:?lab.yaml sets it}" via "${GUESTGW_V6:?lab.yaml sets it}"

nft -f /opt/socketlab/router/nftables.conf
say "firewall loaded from services/router/nftables.conf"
# Impairments as data (docs/lab.md#impairments-as-data): after the firewall, whose
# `flush ruleset` would remove the helper's queue rules.
if ! applied=$(/opt/socketlab/router/impair.sh apply 2>&1); then
    printf '%s\n' "$applied" | sed 's/^/router: /'
    say "error: the declared impairments (IMPAIR_*) could not be applied"
    exit 1
fi
[ -z "$applied" ] || printf '%s\n' "$applied" | sed 's/^/router: /'
# IPv6 forwards once duplicate address detection has passed (about a second after the
# interfaces came up; before, the router cannot even ask for its neighbours): "ready" means
# both families. The fe80:: addresses need not wait for it (link-local-now.sh).
/opt/socketlab/hosts/link-local-now.sh
for _ in $(seq 1 100); do
    [ -n "$(ip -6 addr show tentative)" ] || break
    sleep 0.05
done
ip -br addr | sed 's/^/router: addr /'
ip -4 route | sed 's/^/router: route /'
ip -6 route | grep -v '^fe80' | sed 's/^/router: route6 /'
touch /run/socketlab-router-ready  # the health check's half: firewall, impairments, IPv6 all done
say "ready"

# The root part ends here: idle as the unprivileged user socketlab (no
# capabilities, no_new_privs), under tini as PID 1, which reaps the processes
# that `docker compose exec` leaves behind (tcpdump, netem.py) and forwards
# SIGTERM. On-demand root work comes in through `docker compose exec -u root`.
exec setpriv --reuid=socketlab --regid=socketlab --init-groups \
    --inh-caps=-all --no-new-privs -- tini -- sleep infinity
