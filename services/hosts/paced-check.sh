#!/bin/sh
# The lab's health checks, paced: quick while a service starts, calm once it is up.
#
#   paced-check.sh [--every S] [--as-root] CHECK [ARG...]
#
# compose.yaml runs every health check through this, with `interval: 1s`. Until CHECK has
# succeeded once in this container's life, a probe runs it at once, so `docker compose up
# --wait` sees a service healthy about a second after it is. After that, a probe first waits
# S seconds (default 30), then runs CHECK: Docker starts the next probe `interval` after the
# previous one ended, so an idle lab runs one probe per service every S + 1 s instead of every
# second. Each probe is a runc exec in the engine and a process start in the container; once a
# second in five services that was nearly all of what an idle lab cost (benchmarks/idle_lab.py).
# A failing CHECK makes the probes quick again, and `retries` counts them as before.
#
# Not Compose's `start_interval`: it needs Docker Engine 25 (API 1.44), and Compose refuses
# the whole file on an older engine ("can't set healthcheck.start_interval as feature require
# Docker Engine v25 or later"); Debian 12's docker.io is 20.10. This works on both.
#
# A probe starts as the container's user, root where a service has a root start-up step; it
# drops to socketlab (no capabilities, no_new_privs) as the service did, unless --as-root
# (the router's `nft list` needs root and CAP_NET_ADMIN). The mark of "healthy once" is in
# /tmp, a tmpfs that every container start makes anew, so a restarted service is checked
# quickly again. The compose `timeout` must exceed S.
set -eu
every=30
as_root=no
while :; do
    case ${1:-} in
        --every) every=$2; shift 2 ;;
        --as-root) as_root=yes; shift ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: paced-check.sh [--every S] [--as-root] CHECK [ARG...]" >&2; exit 2; }

if [ "$as_root" = no ] && [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=socketlab --regid=socketlab --init-groups \
        --inh-caps=-all --no-new-privs -- "$0" --every "$every" "$@"
fi

mark=/tmp/.healthy-once
if [ -e "$mark" ]; then
    sleep "$every"
fi
if "$@"; then
    touch "$mark"
else
    status=$?
    rm -f "$mark"
    exit "$status"
fi
