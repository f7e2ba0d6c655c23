# One image for every host of the container lab: router, server, peer, client.
#
#   docker build -t socketlab-lab .                 # what `docker compose build` does
#   docker build --build-arg BASE_IMAGE=... .       # another Debian-based base
#
# With no registry, scripts/setup-host.sh makes debian:bookworm-slim from
# Debian's archive (debootstrap + docker import) so this FROM still resolves.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS base
# Packages come from whatever mirror the base image's apt sources name; nothing
# here names a mirror. tshark asks a debconf question: answered non-interactively.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        python3 python3-pip python3-setuptools python3-wheel \
        nftables iptables iproute2 iputils-ping tcpdump tshark procps tini net-tools lsof \
        telnet netcat-openbsd \
        libcap2-bin; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    # The lab runs with no capabilities and no-new-privileges, where a binary carrying
    # file capabilities cannot even start. ping needs none: it uses the unprivileged ICMP
    # socket (the kernel's ping_group_range allows every group in a container).
    setcap -r "$(command -v ping)"
# The applications run as this unprivileged user; only the start-up step of the
# router (routes, nft) and of an end host (routes) runs as root. tini is PID 1
# after that drop (compose.yaml, docs/lab.md#hardening).
RUN useradd --create-home --uid 10001 --user-group --shell /bin/bash socketlab
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

FROM base AS lab
# socketlab is standard-library only: no dependencies, no build isolation, no
# network access needed at this step.
WORKDIR /src
COPY pyproject.toml README.md* LICENSE* ./
COPY services/socketlab/ services/socketlab/
RUN pip install --no-deps --no-build-isolation --break-system-packages . \
    && rm -rf /src/build /src/*.egg-info /src/services/*.egg-info \
    && socketlab --help >/dev/null
COPY --chmod=0755 services/hosts/ /opt/socketlab/hosts/
COPY --chmod=0755 services/router/ /opt/socketlab/router/
COPY --chmod=0755 services/pki/ /opt/socketlab/pki/
# The lab's CA and certificates are made at run time into the `pki` volume (compose.yaml):
# an empty folder owned by socketlab, so the volume is too.
RUN mkdir /pki && chown socketlab:socketlab /pki
# The protocol's Wireshark dissector, in Wireshark's global Lua plugin folder: tshark and
# Wireshark in any lab host read the guide's messages (docs/wireshark.md).
COPY services/wireshark/socketlab.lua /opt/socketlab/wireshark/socketlab.lua
RUN plugins="$(tshark -G folders | sed -n 's/^Global Lua Plugins:[[:space:]]*//p')" \
    && mkdir -p "$plugins" && ln -s /opt/socketlab/wireshark/socketlab.lua "$plugins/socketlab.lua" \
    && tshark -G protocols | grep -q "socketlab"
WORKDIR /home/socketlab
USER socketlab
CMD ["socketlab", "--help"]
