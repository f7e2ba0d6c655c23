#!/bin/sh
# The lab's health checks, paced: quick while a service starts, calm once it is up.
#
#   paced-check.sh [--every S] [--rounds N] [--tries T] [--limit L] [--as-root] CHECK [ARG...]
#
# compose.yaml runs every health check through this, with `interval: 1s`. Each probe Docker
# starts is a runc exec in the engine and a process start in the container (about 60 ms of
# CPU: once a second in five services, that was nearly all of what an idle lab cost, and a
# good part of what starting one did; benchmarks/idle_lab.py, benchmarks/lab_up.py), so a probe
# does its waiting inside the container instead of asking Docker for more probes:
# - until CHECK has succeeded once in this container's life, a probe tries it up to T times
#   (default 40), a quarter of a second apart, and ends at the first success: so `docker
#   compose up --wait` sees a service healthy a quarter of a second after it is, from one
#   probe; after T failures it ends with the last one's status (`retries` counts those);
# - after that, a probe stays: it runs CHECK every S seconds (default 30), N times (default
#   10), and ends when CHECK fails (with its status, at once) or after the N-th success. So a
#   service that breaks is seen within S seconds, and Docker starts one probe per service
#   every N * S + 1 s. A failed CHECK makes the probes quick again.
# Each run of CHECK gets L seconds (default 10) before `timeout` ends it as failed (124): a
# check that hangs is seen as soon as one that fails, whatever the probe's stay.
# The compose `timeout` must exceed N * S, and T / 4, plus the check's own time
# (lab_tests/unit/test_health.py holds lab.yaml to it).
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
tries=40
limit=10
as_root=no
while :; do
    case ${1:-} in
        --every) every=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --tries) tries=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        --as-root) as_root=yes; shift ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: paced-check.sh [--every S] [--rounds N] [--tries T] [--limit L] [--as-root] CHECK [ARG...]" >&2; exit 2; }

if [ "$as_root" = no ] && [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=socketlab --regid=socketlab --init-groups \
        --inh-caps=-all --no-new-privs -- "$0" --every "$every" --rounds "$rounds" --tries "$tries" --limit "$limit" "$@"
fi

mark=${PACED_CHECK_MARK:-/tmp/.healthy-once}
if [ ! -e "$mark" ]; then
    try=1
    until timeout "$limit" "$@"; do
        status=$?
        [ "$try" -lt "$tries" ] || exit "$status"
        try=$((try + 1))
        sleep 0.25
    done
    touch "$mark"
    exit 0
fi
round=0
while [ "$round" -lt "$rounds" ]; do
    sleep "$every"
    timeout "$limit" "$@" || { status=$?; rm -f "$mark"; exit "$status"; }
    round=$((round + 1))
done
