#!/bin/bash
# The client host: run the demo against the server once, print it, then stay
# up so that tests can `docker compose exec client ...`. The health check turns
# healthy once the demo has finished, right or wrong: its exit status is in
# /tmp/demo.exit and its verdict in the log, and a wrong answer shows as the
# failing test lab_tests/lab/test_startup_demo.py, with the lab still up.
set -uo pipefail
server=${LAB_SERVER:?LAB_SERVER: the server to run the demo against (lab.yaml sets it)}
rm -f /tmp/demo.exit
# It starts beside the server, not after it (compose.yaml): the first request waits for it;
# then the same over TLS, trusting only the lab's CA (docs/tls.md). One process for both.
python3 -m socketlab.startup "$server" 65439
status=$?
echo "$status" > /tmp/demo.exit
if [ "$status" = 0 ]; then
    echo "client: demo against $server done; idle (docker compose exec client socketlab ...)"
else
    echo "client: demo against $server FAILED (exit $status)" >&2
fi
trap 'exit 0' TERM INT
sleep infinity & wait
