#!/bin/sh
# Lab nodes on this host (docs/scale.md#the-lab-node): each a container with its own Docker
# engine and one whole lab inside, at lab 0's addresses, the lab's images loaded from this
# host's engine (no registry).
#
#   deploy/lab-node/node.sh build          # the socketlab-node image (deploy/lab-node/Dockerfile)
#   deploy/lab-node/node.sh up NAME        # node NAME, its engine, the lab's images, its lab up
#   deploy/lab-node/node.sh down NAME      # node NAME and its engine's volume, gone
#
# Then: docker exec NAME docker compose exec client sh -c 'socketlab demo "$LAB_SERVER"'
set -eu
cd "$(dirname "$0")/../.."
say() { printf 'node: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
IMAGE=socketlab-node
IMAGES="socketlab-lab:latest socketlab-ppc:latest"
# What an engine inside needs: every capability (but CAP_SYS_RESOURCE, which the lab does not
# use and which some hosts' engines cannot give: Docker 20.10's --privileged asks for it and
# fails there), no seccomp or AppArmor filter (it mounts, and clones namespaces), /sys writable
# (start.sh remounts the cgroups), and /dev/net/tun for the guest's tap. No network: the node
# is reached with `docker exec`, and its lab keeps to itself.
RUN="--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined
     --security-opt systempaths=unconfined --device /dev/net/tun --network none"

case ${1:-} in
build)
    docker buildx build --load -q -f deploy/lab-node/Dockerfile -t "$IMAGE" \
        --build-arg BASE_IMAGE="${SOCKETLAB_BASE_IMAGE:-debian:bookworm-slim}" . >/dev/null
    say "built $IMAGE" ;;
up)
    name=${2:?usage: node.sh up NAME}
    docker rm -f "$name" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086  # RUN is a list of options
    docker run -d $RUN -v "$name:/var/lib/docker" --label socketlab.node=1 --name "$name" "$IMAGE" >/dev/null
    for _ in $(seq 1 120); do  # its engine's own ready signal, with a deadline
        docker exec "$name" test -e /run/lab-node-ready 2>/dev/null && break
        docker inspect -f '{{.State.Running}}' "$name" | grep -q true || { docker logs "$name" >&2; die "$name exited"; }
        sleep 0.5
    done
    docker exec "$name" test -e /run/lab-node-ready || die "$name: no engine after 60 s"
    for image in $IMAGES; do  # load only what the node lacks (its volume keeps them)
        want=$(docker image inspect -f '{{.Id}}' "$image") || die "no $image here: docker compose build first"
        have=$(docker exec "$name" docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
        [ "$want" = "$have" ] || { say "$name: loading $image"; docker save "$image" | docker exec -i "$name" docker load -q >/dev/null; }
    done
    docker exec "$name" docker compose up -d --wait --no-build >/dev/null 2>&1 \
        || { docker exec "$name" docker compose ps -a >&2; die "$name: its lab did not come up"; }
    say "$name: lab up" ;;
down)
    name=${2:?usage: node.sh down NAME}
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume rm "$name" >/dev/null 2>&1 || true
    say "$name: gone" ;;
*)
    sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
