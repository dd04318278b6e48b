#!/usr/bin/env bash
# Installs what building and testing xdpctl needs on Debian 12, and mounts bpffs.
# Idempotent; run as root.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root (XDP needs CAP_BPF and CAP_NET_ADMIN)" >&2; exit 1; }

packages=(libbpf-dev libxdp-dev libelf-dev zlib1g-dev pkg-config bpftool xdp-tools iproute2 iputils-ping socat nftables iptables ethtool jq curl traceroute strace lintian systemd man-db dpkg-dev bird2 libpcap-dev tshark)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! mountpoint -q /sys/fs/bpf; then
    mount -t bpf bpf /sys/fs/bpf -o mode=0700 # only root may pin, or remove pins
fi

command -v swift >/dev/null || { echo "setup.sh: swift is not on PATH (Swift 6.x toolchain required)" >&2; exit 1; }

# The agent's end-to-end tests read /metrics with the Prometheus Python client's parser.
# pip where python3 is one of its own (pyenv's), Debian's package where pip may not install.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore prometheus-client 2>/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-prometheus-client >/dev/null
python3 -c 'import prometheus_client' || { echo "setup.sh: cannot install the Python prometheus_client" >&2; exit 1; }
