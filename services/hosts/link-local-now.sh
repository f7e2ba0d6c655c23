#!/bin/sh
# Make this container's link-local (fe80::) addresses usable now (as root, CAP_NET_ADMIN).
#
# Docker gives the lab's own addresses "nodad", but the kernel's fe80:: address on each
# interface runs duplicate address detection for ~1.7 s after the container starts, and so
# held every host's and the router's start (issue 20). The address is derived from the
# interface's MAC, which Docker makes unique on its bridge: each tentative one is added again,
# the same, without DAD (its fe80::/64 route comes back with it).
set -eu
ip -6 -o addr show scope link tentative | while read -r _ dev _ addr _; do
    ip -6 addr del "$addr" dev "$dev"
    ip -6 addr add "$addr" dev "$dev" scope link nodad
done
