#!/bin/bash
# Healthy when every port of the address plan is listening and the main app
# server answers a connect.
set -eu
listening=$(ss -Hltn | awk '{print $4}')
for port in 65431 65432 65433 65434 65435 65436 65437; do
    grep -q ":$port\$" <<<"$listening" || { echo "port $port not listening"; exit 1; }
done
socketlab probe 127.0.0.1 65432 --timeout 2 >/dev/null
