#!/bin/bash
# The server host: every service of the port table in docs/address-plan.md,
# one process each, all logging to stdout with a "PORT program |" prefix.
# If any of them exits, this script stops the rest and exits non-zero.
set -uo pipefail

serve() {  # serve PORT PROGRAM HOST [ARG...]
    local port=$1 program=$2; shift 2
    socketlab "$program" "$1" "$port" "${@:2}" 2>&1 | sed -u "s/^/$port $program | /" &
}

trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
# This host's own addresses, for the listeners on one address (lab.yaml sets them).
: "${LAB_SERVER_V4:?lab.yaml sets it}" "${LAB_SERVER_V6:?lab.yaml sets it}"

serve 65432 app-server       '::'
serve 65431 echo-server      127.0.0.1
serve 65433 app-server       "$LAB_SERVER_V4"
serve 65434 app-server       "$LAB_SERVER_V6"
serve 65435 multiconn-server '::'
serve 65436 echo-server      ''
# Byte-order negative control: decodes arrays in this machine's native order.
serve 65437 app-server       '::' --array-decoder naive
# The app protocol over TLS (docs/tls.md), with the certificate the pki service made.
serve 65439 app-server       '::' --tls-cert /pki/server.pem --tls-key /pki/server.key

wait -n
echo "server: a service exited; stopping" >&2
kill $(jobs -p) 2>/dev/null
exit 1
