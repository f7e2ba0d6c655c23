#!/bin/bash
# Impair the router's forwarding, on demand (the lab host's kernel has no
# sch_netem, so services/router/netem.py does delay/jitter/reorder/loss in userspace).
#
#   impair.sh start [netem.py options]   e.g. --delay 20 --jitter 10 --reorder 10 --loss 3
#   impair.sh stop                       release held packets, print netem's counters
#                                        (one JSON line), remove the queue rules
#   impair.sh mtu N                      set the MTU of both router interfaces (1500 = undo)
#
# Only forwarded TCP is queued; the nftables policy (services/router/nftables.conf) is
# untouched and still decides first-come what may pass.
set -Eeuo pipefail
dir=/run/socketlab-impair
rule=(FORWARD -p tcp -j NFQUEUE --queue-num 0 --queue-bypass)
# Never fail in silence: name the command that failed.
trap 'echo "impair: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

# iptables TABLE-ARGS...: wait for the xtables lock, and try once more if the kernel said no
# (seen, rarely, right after another rule change: exit 1 and nothing printed).
rule_change() {
    local tool=$1; shift
    "$tool" -w 5 "$@" || { echo "impair: $tool $* failed (exit $?); once more" >&2; sleep 0.2
                           "$tool" -w 5 "$@"; }
}

case ${1:-} in
start)
    shift
    mkdir -p "$dir"
    [ ! -e "$dir/pid" ] || { echo "impair: already running (pid $(cat "$dir/pid"))" >&2; exit 1; }
    python3 /opt/socketlab/router/netem.py --queue 0 "$@" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    # A start that fails leaves nothing behind: no netem, no pid file, no rule.
    trap 'rc=$?; if [ $rc != 0 ]; then "$0" stop >/dev/null 2>&1 || true; cat "$dir/log" >&2; fi' EXIT
    # Readiness: netem prints its settings once bound to the queue.
    for _ in $(seq 1 100); do
        grep -q '^netem: queue' "$dir/log" && break
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "impair: netem exited" >&2; exit 1; }
        sleep 0.05
    done
    grep -q '^netem: queue' "$dir/log" || { echo "impair: netem not ready after 5 s" >&2; exit 1; }
    rule_change iptables -t mangle -A "${rule[@]}"
    rule_change ip6tables -t mangle -A "${rule[@]}"
    cat "$dir/log"
    ;;
stop)
    iptables -w 5 -t mangle -D "${rule[@]}" 2>/dev/null || true
    ip6tables -w 5 -t mangle -D "${rule[@]}" 2>/dev/null || true
    if [ -e "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$dir/pid"
        tail -n 1 "$dir/log"
    fi
    ;;
mtu)
    for dev in $(ip -o link show | awk -F'[ :@]+' '$2 != "lo" {print $2}'); do
        ip link set dev "$dev" mtu "$2"
    done
    ip -br link
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
