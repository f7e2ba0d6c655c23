#!/usr/bin/env bash
# Make this host able to run the lab: Docker engine, Compose v2, buildx, the
# Debian base image, tshark (the dissector's own test reads a pcap with it) and
# chromium (the conformance report's page is rendered headless).
# Idempotent: where Docker, tshark and chromium already work, it does nothing
# but check. Supported hosts: Debian 12 / Debian 13 and derivatives (apt).
#
#   scripts/setup-host.sh            # engine + compose + buildx + base image
#   scripts/setup-host.sh --install-engine   # only install the engine, compose and buildx
#   scripts/setup-host.sh --engine           # only install them if missing and start dockerd
#                                            # (the lab node's image and start: deploy/lab-node/)
#
# Environment:
#   SOCKETLAB_BASE_IMAGE   base image the Dockerfile starts from
#                          (default debian:bookworm-slim)
set -euo pipefail

BASE_IMAGE=${SOCKETLAB_BASE_IMAGE:-debian:bookworm-slim}
LOG_DIR=${SOCKETLAB_STATE_DIR:-/var/lib/socketlab}
say() { printf 'setup-host: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The Debian mirror this host already uses (never a hard-coded address).
debian_mirror() {
    local uri
    uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
          | grep -m1 -E '/debian/?( |$)' | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//')
    [ -n "$uri" ] || die "cannot find a Debian mirror in the apt sources"
    printf '%s\n' "${uri%/}"
}

docker_works() { docker info >/dev/null 2>&1; }
compose_works() { docker compose version >/dev/null 2>&1; }
buildx_works() { docker buildx version >/dev/null 2>&1; }

apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_packages() {
    command -v apt-get >/dev/null || die "this script supports apt-based hosts (Debian/Ubuntu); install Docker, Compose v2 and buildx yourself"
    [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"
    if ! command -v dockerd >/dev/null; then
        say "installing docker.io"
        apt_install docker.io
    fi
    command -v debootstrap >/dev/null || apt_install debootstrap
    if ! compose_works || ! buildx_works; then
        if apt-cache show docker-compose 2>/dev/null | grep -q '^Version: 2'; then
            apt_install docker-compose docker-buildx
        else
            # Debian 12 ships Compose v1 only: take v2 and buildx from trixie,
            # pinned low so nothing else on the host moves to trixie.
            say "adding Debian trixie at priority 100 for docker-compose v2 and docker-buildx"
            local mirror; mirror=$(debian_mirror)
            printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$mirror" > /etc/apt/sources.list.d/socketlab-trixie.sources
            printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' \
                > /etc/apt/preferences.d/socketlab-trixie
            apt_updated=
            apt_install -t trixie docker-compose docker-buildx
        fi
    fi
}

install_tshark() {  # lab_tests/unit/test_dissector.py reads a committed pcap with the host's tshark
    command -v tshark >/dev/null && return 0
    command -v apt-get >/dev/null || die "tshark is missing: install Wireshark's tshark (4.0 or later)"
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    say "installing tshark"
    # Its debconf question (may non-root users capture?): no, without asking.
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | $sudo debconf-set-selections
    [ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tshark >/dev/null
}

install_chromium() {  # lab_tests/lab/test_conform_page.py renders the conformance report headless
    command -v chromium >/dev/null && return 0
    command -v apt-get >/dev/null || die "chromium is missing: install Chromium (the command chromium, run headless)"
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    say "installing chromium"
    [ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

start_dockerd() {
    docker_works && return 0
    say "starting dockerd"
    mkdir -p "$LOG_DIR"
    # Keep Docker's own networks inside the test-bed range, out of the labs' way
    # (docs/address-plan.md; labs/engine.env, written by `make docs`).
    . "$(dirname "$0")/../labs/engine.env"
    nohup dockerd --bip "$DOCKER_BRIDGE" \
        --default-address-pool "base=$DOCKER_POOL,size=24" \
        >"$LOG_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
        docker_works && { say "dockerd is up"; return 0; }
        sleep 0.5
    done
    tail -n 20 "$LOG_DIR/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s (log: $LOG_DIR/dockerd.log)"
}

ensure_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    if docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        say "pulled $BASE_IMAGE"; return 0
    fi
    # No registry: build the same image from Debian's archive.
    local suite=${BASE_IMAGE#*:}; suite=${suite%-slim}
    local mirror; mirror=$(debian_mirror)
    local rootfs; rootfs=$(mktemp -d /var/tmp/socketlab-rootfs.XXXXXX)
    say "no registry: debootstrap $suite into $rootfs and import it as $BASE_IMAGE"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $LOG_DIR/debootstrap.log)"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    say "imported $BASE_IMAGE"
}

main() {
    case ${1:-} in
        --install-engine) install_packages; return ;;
        --engine) docker_works && compose_works || { install_packages; start_dockerd; }; return ;;
        "") ;;
        *) die "usage: $0 [--install-engine | --engine]" ;;
    esac
    if ! docker_works || ! compose_works || ! buildx_works; then
        install_packages
        start_dockerd
    fi
    compose_works || die "docker compose v2 is not available after setup"
    buildx_works || die "docker buildx is not available after setup"
    ensure_base_image
    install_tshark
    install_chromium
}

main "$@"
