#!/usr/bin/env bash
# The demo: builds xdpctl, makes a client and a server namespace joined by a veth pair,
# applies configs/demo.json to the server side, sends allowed and blocked traffic, and
# prints `xdpctl stats`. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release 2>&1 | tail -1
xdpctl="$PWD/.build/release/xdpctl"

tag="demo$$"
cli="xdpc-$tag" srv="xdps-$tag"
export XDPCTL_PIN_ROOT="/sys/fs/bpf/xdpctl-$tag"
cleanup() {
    "$xdpctl" down >/dev/null 2>&1 || true
    ip netns del "$cli" 2>/dev/null || true
    ip netns del "$srv" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$cli"; ip netns add "$srv"
ip link add xd-cli netns "$cli" type veth peer name xd-srv netns "$srv"
ip -n "$cli" addr add 10.99.0.2/24 dev xd-cli
ip -n "$cli" addr add 10.99.0.66/24 dev xd-cli         # a blocklisted source
ip -n "$srv" addr add 10.99.0.1/24 dev xd-srv
for ns in "$cli" "$srv"; do ip -n "$ns" link set lo up; done
ip -n "$cli" link set xd-cli up; ip -n "$srv" link set xd-srv up

echo "== xdpctl apply -f configs/demo.json --netns $srv"
"$xdpctl" apply -f configs/demo.json --netns "$srv"
"$xdpctl" status

echo "== traffic"
ip netns exec "$srv" socat -u TCP-LISTEN:8080,reuseaddr,fork OPEN:/dev/null & tcp_srv=$!
ip netns exec "$srv" socat -u UDP-RECV:1500 OPEN:/dev/null & udp_srv=$!
sleep 0.5
ip netns exec "$cli" ping -c 3 -i 0.2 -W 1 10.99.0.1 >/dev/null && echo "ping 10.99.0.2 -> 10.99.0.1: allowed (default)"
ip netns exec "$cli" ping -c 3 -i 0.2 -W 1 -I 10.99.0.66 10.99.0.1 >/dev/null || echo "ping from 10.99.0.66: blocked (rule blocklist)"
replies=$(ip netns exec "$cli" ping -c 10 -i 0.05 -W 1 10.99.0.1 | grep -c "bytes from" || true)
echo "10 pings in half a second: $replies answered (rate limit ping-per-source: burst 3, then 2/s)"
echo hello | ip netns exec "$cli" socat -u - TCP:10.99.0.1:8080,connect-timeout=2 && echo "tcp to :8080: allowed"
echo hello | ip netns exec "$cli" socat -u - TCP:10.99.0.1:22,connect-timeout=1 2>/dev/null || echo "tcp to :22 from 10.99.0.2: reaches the stack (ssh-admins allows; nothing listens)"
for _ in 1 2 3; do echo x | ip netns exec "$cli" socat -u - UDP-SENDTO:10.99.0.1:1500; done; echo "udp to :1500: dropped (rule udp-high)"
kill "$tcp_srv" "$udp_srv" 2>/dev/null || true

echo "== xdpctl stats"
"$xdpctl" stats
