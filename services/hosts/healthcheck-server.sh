#!/bin/bash
# Healthy when every port of the address plan is listening. (No test connection:
# the servers print the guide's line for every connection, and a probe every
# second would bury them in health-check traffic.)
set -eu
listening=$(ss -Hltn | awk '{print $4}')
for port in 65431 65432 65433 65434 65435 65436 65437; do
    grep -q ":$port\$" <<<"$listening" || { echo "port $port not listening"; exit 1; }
done
