#!/usr/bin/env bash
# Watch the running lab's traffic live, as the router sees it (both networks: `-i any`, so
# each forwarded packet shows twice, once per interface; the router's own RSTs and ICMP errors
# once). `make capture` runs this; docs/wireshark.md explains.
#
#   scripts/capture.sh pcap | wireshark -X lua_script:services/wireshark/socketlab.lua -k -i -
#       the capture as pcap on stdout, for Wireshark on this host (or any pcap reader)
#   scripts/capture.sh decode [tshark display filter]
#       the guide's messages, decoded live by the router's tshark and the dissector the lab
#       image carries (default filter: socketlab)
#   scripts/capture.sh file lab.pcapng [seconds]
#       a pcapng file (written by the router's tshark), for SECONDS or until Ctrl-C
#
# tcpdump / tshark open the capture as root in the router and then run as the unprivileged
# user, like the lab's own capture (lab_tests/harness.py). Nothing is installed on this host.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
if ! docker compose ps --status running --services 2>/dev/null | grep -qx router; then
    echo "capture: the lab's router is not running (make up, or docker compose up -d --wait)" >&2
    exit 1
fi
router=(docker compose exec -T -u root router)

case "$1" in
    pcap)
        exec "${router[@]}" tcpdump -i any -n -U --immediate-mode -B 16384 -Z socketlab -w - ;;
    decode)
        filter=${2:-socketlab}
        exec "${router[@]}" tshark -i any -n -l -B 16 -o tcp.reassemble_out_of_order:TRUE -Y "$filter" ;;
    file)
        [ $# -ge 2 ] || usage
        out=$2
        stop=()
        [ $# -ge 3 ] && stop=(-a "duration:$3")
        # The router writes pcapng to its stdout; this host keeps it.
        "${router[@]}" tshark -i any -n -q -B 16 "${stop[@]}" -F pcapng -w - >"$out"
        echo "capture: $(wc -c <"$out") bytes in $out" >&2 ;;
    *)
        usage ;;
esac
