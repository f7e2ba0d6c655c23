#!/bin/bash
# The lab's one host set-up, for every end host (server, client, client-ppc,
# client-ppc-user): the only part that runs as root. It removes the default routes, routes
# the other lab subnets via the router, waits until the host's IPv6 addresses are usable, then drops to the unprivileged user
# `socketlab` (no capabilities, no way back) and runs the given command under
# tini, which stays PID 1 (reaps, forwards signals) as socketlab too.
#
#   host-start.sh CMD [ARG...]
#
# Environment (compose.yaml sets them):
#   LAB_ROUTER_V4 / LAB_ROUTER_V6   the router's address on this host's network
#   LAB_ROUTES                      subnets (IPv4 and IPv6) to reach via the router
set -euo pipefail
say() { printf '%s: %s\n' "${HOSTNAME:-host}" "$*"; }

# No way out of the lab: Docker's default route (its bridge's gateway, the host) would reach
# any other lab on this host, in IPv6 at least (Docker 20.10 isolates bridges in IPv4 only).
# What this host reaches is its own network, and the lab's others through the router.
while ip -4 route del default 2>/dev/null; do :; done
while ip -6 route del default 2>/dev/null; do :; done
for net in ${LAB_ROUTES:-}; do
    case $net in
        *:*) ip -6 route replace "$net" via "$LAB_ROUTER_V6" ;;
        *)   ip -4 route replace "$net" via "$LAB_ROUTER_V4" ;;
    esac
    say "route $net via router"
done

# An IPv6 address is unusable (bind fails, EADDRNOTAVAIL) while duplicate
# address detection runs. The fe80:: ones need not run it (link-local-now.sh); wait for any
# other: a readiness signal, not a guess.
"$(dirname "$0")/link-local-now.sh"
for _ in $(seq 1 100); do
    [ -z "$(ip -6 addr show tentative)" ] && break
    sleep 0.1
done
[ -z "$(ip -6 addr show tentative)" ] || { say "error: IPv6 address still tentative"; exit 1; }

# setuid to a non-root uid clears the permitted, effective and ambient sets;
# no_new_privs (also set by compose's security_opt) means no exec can gain any
# back, so the bounding set (only changeable with CAP_SETPCAP, which the
# container does not have) is left as it is.
exec setpriv --reuid=socketlab --regid=socketlab --init-groups \
    --inh-caps=-all --no-new-privs -- tini -- "$@"
