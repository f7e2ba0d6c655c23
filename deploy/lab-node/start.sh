#!/bin/sh
# The lab node's start (deploy/lab-node/Dockerfile): its own Docker engine, then idle; the lab
# is brought up by `docker exec NODE docker compose up -d --wait --no-build` once its images
# are loaded (docs/scale.md).
set -eu
say() { printf 'lab-node: %s\n' "$*"; }
# Not privileged where the host's own bounding set lacks a capability (node.sh): the cgroup
# and sysfs mounts come read-only, and are made writable here (CAP_SYS_ADMIN); cgroup v1's
# controllers are bind mounts, v2's one is not.
mount -o remount,rw /sys 2>/dev/null || :
for fs in /sys/fs/cgroup /sys/fs/cgroup/*/; do
    mount -o remount,bind,rw "$fs" 2>/dev/null || mount -o remount,rw "$fs" 2>/dev/null || :
done
# cgroup v2: an engine inside a container must move this container's processes out of the
# group it will delegate to its own containers (as Docker's own dind start does).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p /sys/fs/cgroup/init 2>/dev/null || :
    xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
    sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control \
        || say "cannot delegate the cgroup controllers: the lab's limits may not apply"
fi
SOCKETLAB_STATE_DIR=/var/lib/socketlab /opt/socketlab/scripts/setup-host.sh --engine
say "engine up: $(docker version --format '{{.Server.Version}}')"
touch /run/lab-node-ready
# On a cluster (deploy/k8s/): the lab comes up by itself, its images pulled from the registry
# SOCKETLAB_REGISTRY names (tag SOCKETLAB_TAG: CI publishes them from main).
if [ "${SOCKETLAB_LAB_UP:-0}" = 1 ]; then
    docker compose up -d --wait --no-build
    touch /run/lab-node-lab-up
    say "lab up"
fi
trap 'exit 0' TERM INT
sleep infinity & wait
