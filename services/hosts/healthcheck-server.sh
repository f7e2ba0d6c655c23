#!/bin/bash
# Healthy when every port of the address plan is listening. (No test connection:
# the servers print the guide's line for every connection, and a probe every
# second would bury them in health-check traffic.)
set -eu
listening=$(ss -Hltn | awk '{print $4}')
# The ports are the `serve PORT ...` lines of server.sh, their one home.
for port in $(awk '$1 == "serve" && $2 ~ /^[0-9]+$/ {print $2}' "$(dirname "$0")/server.sh"); do
    grep -q ":$port\$" <<<"$listening" || { echo "port $port not listening"; exit 1; }
done
