#!/bin/sh
# The lab's health checks, paced: quick while a service starts, calm once it is up.
#
#   paced-check.sh [--every S] [--rounds N] [--as-root] CHECK [ARG...]
#
# compose.yaml runs every health check through this, with `interval: 1s`. Until CHECK has
# succeeded once in this container's life, a probe runs it at once, so `docker compose up
# --wait` sees a service healthy about a second after it is. After that, a probe stays: it
# runs CHECK every S seconds (default 30), N times (default 10), and ends when CHECK fails
# (with its status, at once) or after the N-th success. So a service that breaks is seen
# within S seconds, as before, while Docker starts a probe (a runc exec in the engine and a
# process start in the container: nearly all of what an idle lab costs, benchmarks/idle_lab.py)
# once every N * S + 1 s per service instead of every S + 1 s, or every second unpaced.
# A failing CHECK makes the probes quick again, and `retries` counts them as before. The
# compose `timeout` must exceed N * S plus the check's own time (lab_tests/unit/test_health.py
# holds lab.yaml to it).
#
# Not Compose's `start_interval`: it needs Docker Engine 25 (API 1.44), and Compose refuses
# the whole file on an older engine ("can't set healthcheck.start_interval as feature require
# Docker Engine v25 or later"); Debian 12's docker.io is 20.10. This works on both.
#
# A probe starts as the container's user, root where a service has a root start-up step; it
# drops to socketlab (no capabilities, no_new_privs) as the service did, unless --as-root
# (the router's `nft list` needs root and CAP_NET_ADMIN). The mark of "healthy once" is in
# /tmp, a tmpfs that every container start makes anew, so a restarted service is checked
# quickly again (PACED_CHECK_MARK names another file: the unit test's).
set -eu
every=30
rounds=10
as_root=no
while :; do
    case ${1:-} in
        --every) every=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --as-root) as_root=yes; shift ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: paced-check.sh [--every S] [--rounds N] [--as-root] CHECK [ARG...]" >&2; exit 2; }

if [ "$as_root" = no ] && [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=socketlab --regid=socketlab --init-groups \
        --inh-caps=-all --no-new-privs -- "$0" --every "$every" --rounds "$rounds" "$@"
fi

mark=${PACED_CHECK_MARK:-/tmp/.healthy-once}
check() {
    "$@" && return 0 || status=$?
    rm -f "$mark"
    exit "$status"
}
if [ ! -e "$mark" ]; then
    check "$@"
    touch "$mark"
    exit 0
fi
round=0
while [ "$round" -lt "$rounds" ]; do
    sleep "$every"
    check "$@"
    round=$((round + 1))
done
