#!/bin/bash
# Impair what the router forwards: delay, jitter, reordering, loss, duplication, rate.
#
#   impair.sh start [--net NET] OPTION...  OPTION: --delay MS --jitter MS --reorder % --loss %
#                                          --duplicate % --rate KBIT/S --seed N (helper only)
#                                          e.g. --delay 20 --jitter 10 --reorder 10 --loss 3
#   impair.sh plan  [--net NET] OPTION...  print the backend and the exact commands; change nothing
#   impair.sh stop  [--net NET]            undo (every impairment when no NET); the helper
#                                          releases held packets and prints its counters
#                                          (one JSON line each), netem prints tc's statistics
#   impair.sh apply [--plan]               the impairments declared in the environment, one per
#                                          IMPAIR_<NET> (compose.yaml; start.sh runs this)
#   impair.sh mtu N                        set the MTU of both router interfaces (1500 = undo)
#
# NET is a network the router is on (servernet, clientnet), found by its subnet, given in the
# environment as <NET>_V4; the impairment applies to what the router sends into it. Without
# --net: to everything it forwards, both ways. Backend: IMPAIR_BACKEND=netem|nfqueue, or when
# that is empty, `tc qdisc ... netem` where the kernel has sch_netem (tried on lo), else the
# NFQUEUE helper services/router/netem.py (forwarded TCP only, after the firewall's verdict).
set -Eeuo pipefail
dir=/run/socketlab-impair
helper=/opt/socketlab/router/netem.py
# The helper runs as socketlab, with the two capabilities it uses: NET_ADMIN (NFQUEUE
# verdicts) and NET_RAW (the duplicates' raw sockets). Root is only for this script.
as_helper=(setpriv --reuid=socketlab --regid=socketlab --init-groups
           --inh-caps=-all,+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw --no-new-privs --)
as_socketlab=(setpriv --reuid=socketlab --regid=socketlab --init-groups --inh-caps=-all --no-new-privs --)
# Never fail in silence: name the command that failed (exit 2: a usage error, already said).
trap 'rc=$?; [ $rc = 2 ] || echo "impair: line $LINENO: \"$BASH_COMMAND\" failed (exit $rc)" >&2' ERR

die() { echo "impair: $*" >&2; exit 2; }
usage() { sed -n '2,19p' "$0" >&2; exit 2; }

# iptables TABLE-ARGS...: wait for the xtables lock, and try once more if the kernel said no
# (seen, rarely, right after another rule change: exit 1 and nothing printed).
rule_change() {
    local tool=$1; shift
    "$tool" -w 5 "$@" || { echo "impair: $tool $* failed (exit $?); once more" >&2; sleep 0.2
                           "$tool" -w 5 "$@"; }
}

# A process is alive until it exits (a zombie has): /proc, not kill -0, which root lacks
# the capability (CAP_KILL) to send to the helper.
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# devices NET: the router's interfaces into NET (every interface but lo when NET is "all").
devices() {
    if [ "$1" = all ]; then
        ip -o link show | awk -F'[ :@]+' '$2 != "lo" {print $2}'
        return
    fi
    [[ $1 =~ ^[a-z][a-z0-9_]*$ ]] || die "'$1' is not a network name"
    local var=${1^^}_V4
    [ -n "${!var:-}" ] || die "no network '$1': $var is not set (compose.yaml, the router's environment)"
    local found
    found=$(ip -o -4 addr show to "${!var}" | awk '{print $2}')
    [ -n "$found" ] || die "the router has no interface on $1 (${!var})"
    echo "$found"
}

# backend: "netem" or "nfqueue", and why, as one line "NAME (REASON)".
backend() {
    case ${IMPAIR_BACKEND:-} in
    netem|nfqueue) echo "$IMPAIR_BACKEND (IMPAIR_BACKEND=$IMPAIR_BACKEND)" ;;
    "")
        if tc qdisc add dev lo root netem 2>/dev/null; then
            tc qdisc del dev lo root
            echo "netem (the kernel has sch_netem)"
        else
            echo "nfqueue (the kernel has no sch_netem)"
        fi ;;
    *) die "IMPAIR_BACKEND is '$IMPAIR_BACKEND', not netem, nfqueue or empty" ;;
    esac
}

# impair MODE NET OPTION...: MODE is "start" (do it) or "plan" (print it). The commands
# printed are the commands run.
impair() {
    local mode=$1 net=$2; shift 2
    local -A opt=([delay]=0 [jitter]=0 [reorder]=0 [loss]=0 [duplicate]=0 [rate]=0 [seed]="")
    while [ $# -gt 0 ]; do
        local name=${1#--}
        [[ $1 == --* && -v opt[$name] ]] || die "unknown option '$1' (see impair.sh --help)"
        [ $# -ge 2 ] || die "$1 needs a value"
        [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 '$2' is not a number"
        [[ $name != seed || $2 =~ ^[0-9]+$ ]] || die "--seed '$2' is not a whole number"
        opt[$name]=$2
        shift 2
    done
    [[ ${opt[reorder]} == 0 || ${opt[delay]} != 0 ]] || die "--reorder needs --delay (the packets it lets overtake)"
    local devs choice
    devs=$(devices "$net")
    choice=$(backend)
    echo "impair: $net: backend $choice"
    if [ "$mode" = start ]; then
        mkdir -p "$dir"
        [ ! -e "$dir/$net.state" ] || { echo "impair: $net: already impaired ($(cat "$dir/$net.state"))" >&2; exit 1; }
        if [ "$net" = all ] && compgen -G "$dir/*.state" >/dev/null || [ -e "$dir/all.state" ]; then
            echo "impair: $net: overlaps an impairment already running: stop it first" >&2; exit 1
        fi
        # A start that fails leaves nothing behind.
        trap 'rc=$?; if [ $rc != 0 ]; then "$0" stop --net "'"$net"'" >/dev/null 2>&1 || true; fi' EXIT
    fi
    if [ "${choice%% *}" = netem ]; then
        local args=()
        [[ ${opt[delay]} == 0 && ${opt[jitter]} == 0 ]] || args+=(delay "${opt[delay]}ms")
        [[ ${opt[jitter]} == 0 ]] || args+=("${opt[jitter]}ms")
        [[ ${opt[loss]} == 0 ]] || args+=(loss "${opt[loss]}%")
        [[ ${opt[reorder]} == 0 ]] || args+=(reorder "${opt[reorder]}%")
        [[ ${opt[duplicate]} == 0 ]] || args+=(duplicate "${opt[duplicate]}%")
        [[ ${opt[rate]} == 0 ]] || args+=(rate "${opt[rate]}kbit")
        [ "$mode" = plan ] || printf 'backend=netem\ndevs="%s"\n' "$(echo $devs)" >"$dir/$net.state"
        for dev in $devs; do
            local command=(tc qdisc replace dev "$dev" root netem "${args[@]}")
            echo "${command[*]}"
            [ "$mode" = plan ] || "${command[@]}"
        done
        return
    fi
    # The helper: one queue per impairment, numbered by the interface (0: every interface).
    local queue=0 match=()
    if [ "$net" != all ]; then
        queue=$(cat "/sys/class/net/$devs/ifindex")
        match=(-o "$devs")
    fi
    local command=("${as_helper[@]}" python3 "$helper" --queue "$queue")
    for name in delay jitter reorder loss duplicate rate seed; do
        [[ ${opt[$name]} == 0 || ${opt[$name]} == "" ]] || command+=("--$name" "${opt[$name]}")
    done
    local rule=(-t security -A FORWARD "${match[@]}" -p tcp -j NFQUEUE --queue-num "$queue" --queue-bypass)
    echo "${command[*]}"
    echo "iptables -w 5 ${rule[*]}"
    echo "ip6tables -w 5 ${rule[*]}"
    [ "$mode" = start ] || return 0
    printf 'backend=nfqueue\nqueue=%s\nmatch="%s"\n' "$queue" "${match[*]}" >"$dir/$net.state"
    # Emptied here, not only by the child's redirection: the child opens the file after the
    # fork, so the loop below could otherwise read the last run's "netem: queue" line.
    : >"$dir/$net.log"
    "${command[@]}" >"$dir/$net.log" 2>&1 &
    echo "pid=$!" >>"$dir/$net.state"
    # Readiness: the helper prints its settings once bound to the queue.
    for _ in $(seq 1 100); do
        grep -q '^netem: queue' "$dir/$net.log" && break
        alive $! || { cat "$dir/$net.log" >&2; echo "impair: $net: netem.py exited" >&2; exit 1; }
        sleep 0.05
    done
    grep -q '^netem: queue' "$dir/$net.log" || { echo "impair: $net: netem.py not ready after 5 s" >&2; exit 1; }
    rule_change iptables "${rule[@]}"
    rule_change ip6tables "${rule[@]}"
    cat "$dir/$net.log"
}

# undo NET: remove one impairment; the helper's counters or tc's statistics on stdout.
undo() {
    local net=$1 backend="" devs="" queue=0 match="" pid=""
    # shellcheck source=/dev/null
    . "$dir/$net.state"
    if [ "$backend" = netem ]; then
        for dev in $devs; do
            tc -s qdisc show dev "$dev" root
            tc qdisc del dev "$dev" root 2>/dev/null || true
        done
    else
        # shellcheck disable=SC2086  # match is "" or "-o DEV"
        local rule=(-t security -D FORWARD $match -p tcp -j NFQUEUE --queue-num "$queue" --queue-bypass)
        iptables -w 5 "${rule[@]}" 2>/dev/null || true
        ip6tables -w 5 "${rule[@]}" 2>/dev/null || true
        if [ -n "$pid" ]; then
            "${as_socketlab[@]}" kill -TERM "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.05; done
            grep '^{' "$dir/$net.log" | tail -n 1 || true
        fi
    fi
    rm -f "$dir/$net.state"
}

# --net NET, or "all".
net_of() { if [ "${1:-}" = --net ]; then [ -n "${2:-}" ] || die "--net needs a network"; echo "$2"; else echo all; fi; }

case ${1:-} in
start|plan)
    mode=$1; shift
    net=$(net_of "$@")
    [ "$net" = all ] || shift 2
    impair "$mode" "$net" "$@"
    ;;
stop)
    shift
    net=$(net_of "$@")
    if [ "$net" = all ] && [ $# = 0 ]; then
        for state in "$dir"/*.state; do
            [ -e "$state" ] || continue
            name=${state##*/}
            undo "${name%.state}"
        done
    elif [ -e "$dir/$net.state" ]; then
        undo "$net"
    fi
    ;;
apply)
    [ "${2:-}" = "" ] || [ "${2:-}" = --plan ] || usage
    mode=start
    [ "${2:-}" != --plan ] || mode=plan
    for var in $(compgen -e | grep '^IMPAIR_' | grep -vx 'IMPAIR_BACKEND' | sort); do
        [ -n "${!var//[[:space:]]/}" ] || continue   # empty: that network is not impaired
        net=${var#IMPAIR_}
        # shellcheck disable=SC2086  # the value is impair.sh options, split on purpose
        ( impair "$mode" "${net,,}" ${!var} )
    done
    ;;
mtu)
    for dev in $(devices all); do
        ip link set dev "$dev" mtu "$2"
    done
    ip -br link
    ;;
*)
    usage
    ;;
esac
