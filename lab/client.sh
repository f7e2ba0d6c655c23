#!/bin/bash
# The client host: run the demo against the server once, print it, then stay
# up so that tests can `docker compose exec client ...`. The health check
# turns healthy only after the demo succeeded.
set -uo pipefail
server=${LAB_SERVER:-198.18.1.10}
rm -f /tmp/demo.ok
if socketlab demo "$server"; then
    touch /tmp/demo.ok
    echo "client: demo against $server done; idle (docker compose exec client socketlab ...)"
else
    echo "client: demo against $server FAILED" >&2
fi
trap 'exit 0' TERM INT
sleep infinity & wait
