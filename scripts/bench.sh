#!/usr/bin/env bash
# The benchmark command. Prints tables of medians and ratios against baselines measured in
# the same run:
#   1. program cost (PROG_TEST_RUN ns/packet) per firewall path at several rule counts,
#      beside a trivial XDP_DROP program and xdp-filter on the same frames; the same rule
#      sets' many-flow traces (10,000 distinct packets, each run once); then per
#      rate-limit and load-balancer path;
#   2. receiver cost and drop rate on a veth pair between two namespaces
#      (scripts/bench_veth.py): the receiving NAPI thread's CPU time per packet at a paced
#      offered load, and packets per second unpaced, against XDP_DROP, xdp-filter,
#      nftables (linear and set) and iptables raw, then the firewall on the traces;
#   3. rate-limit precision under a flood from 1 source and from 1,000 sources
#      (scripts/bench_ratelimit.py);
#   4. NAT on a router namespace (scripts/bench_nat.py): the router's CPU time per packet
#      for SNAT out, its replies and DNAT, and new flows, against nftables
#      masquerade/dnat and plain forwarding;
#   5. apply timings through the real xdpctl on a veth in a private network namespace:
#      cold apply, no-op apply, one-rule changes (an action, an insert, and deletes of
#      rules spread over the list, a different one each run).
# Parts 2-4 send with xdpctl-bench --send (AF_PACKET, sendmmsg; no live frames). A part
# that cannot run on this kernel says why and is skipped; the others still run.
# Options go to xdpctl-bench (default --rules 10 1000 10000 100000); results are also
# written to $BENCH_OUT (default bench-out/) as bench.json and bench.png (cost against
# rule count, receiver cost). VETH_RUNS (default 5), VETH_SECONDS (2) and VETH_RATE
# (400000 pps) set part 2, RATELIMIT_WINDOWS (default 3) part 3; NAT_RUNS (default 5) and
# NAT_RATE (200000 pps) part 4; APPLY_RULES (default 100000) and APPLY_RUNS (default 5)
# part 5.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product xdpctl-bench 2>&1 | tail -1
swift build -c release --product xdpctl 2>&1 | tail -1
bench=.build/release/xdpctl-bench xdpctl=$PWD/.build/release/xdpctl

out=${BENCH_OUT:-bench-out}
mkdir -p "$out"
python3 -c "import matplotlib" 2>/dev/null || pip install -q matplotlib 2>/dev/null

tag="xbench$$" work=$(mktemp -d)
export XDPCTL_PIN_ROOT="/sys/fs/bpf/xdpctl-$tag"
cleanup() { "$xdpctl" down >/dev/null 2>&1 || true; ip netns del "$tag" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$tag"
# xbench0 carries the veth and apply parts; the others hold the measured programs in
# the XDP dispatcher (xdpctl-bench --hold-on: XDP_DROP, xdp-filter, one per rule count).
for i in $(seq 0 9); do
    ip -n "$tag" link add "xbench$i" type veth peer name "xbpeer$i"
    ip -n "$tag" link set "xbench$i" up; ip -n "$tag" link set "xbpeer$i" up
done

# The load-balancer rows' FIB lookups resolve as on a real LB: clients in 10.50/16 and
# fd50::/64, backends in 10.51/16 and fd51::/64, all behind xbench0, forwarding on.
ip -n "$tag" link set lo up
for a in 10.50.0.1/16 10.51.0.1/16 fd50::1/64 fd51::1/64; do ip -n "$tag" addr add "$a" dev xbench0 nodad 2>/dev/null || ip -n "$tag" addr add "$a" dev xbench0; done
for a in 10.50.0.2 10.51.1.2 10.51.1.3 10.51.1.4 fd50::2 fd51::2 fd51::3; do
    ip -n "$tag" neigh add "$a" lladdr 02:00:00:00:00:0b dev xbench0 nud permanent
done
ip netns exec "$tag" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

# A part that fails says so; the rest still run and write bench.json.
skipped() { echo "== $1: NOT MEASURED (see the error above and docs/benchmarks.md)"; }
echo "== program cost"
"$bench" --netns "$tag" --hold-on "$(seq -s, -f xbench%g 1 9)" --balancer "$@" --json "$out/bench.json" || skipped "program cost"

echo "== veth receiver cost and drop rate"
python3 scripts/bench_veth.py --xdpctl "$xdpctl" --bench "$bench" --runs "${VETH_RUNS:-5}" --seconds "${VETH_SECONDS:-2}" \
    --rate "${VETH_RATE:-400000}" --json "$out/bench.json" || skipped "veth receiver cost"
python3 scripts/plot_bench.py "$out/bench.json" "$out/bench.png" && echo "(plot: $out/bench.png, data: $out/bench.json)" || skipped "plot"

echo "== rate-limit precision"
python3 scripts/bench_ratelimit.py --xdpctl "$xdpctl" --bench "$bench" --windows "${RATELIMIT_WINDOWS:-3}" --json "$out/bench.json" \
    || skipped "rate-limit precision"

echo "== NAT on a router namespace"
python3 scripts/bench_nat.py --xdpctl "$xdpctl" --bench "$bench" --runs "${NAT_RUNS:-5}" --rate "${NAT_RATE:-200000}" --json "$out/bench.json" \
    || skipped "NAT"

rules=${APPLY_RULES:-100000} runs=${APPLY_RUNS:-5}
"$bench" --emit-config "$rules" --interface xbench0 > "$work/a.json"
"$bench" --emit-config "$rules" --interface xbench0 --flip-rule $((rules / 2)) > "$work/b.json"
"$bench" --emit-config "$rules" --interface xbench0 --insert-rule $((rules / 3)) > "$work/c.json"
# Deletes are spread over the list, a different rule each run: a rule that covered whole
# regions of the trees costs a patch more than one in the middle of the list.
for i in $(seq "$runs"); do
    "$bench" --emit-config "$rules" --interface xbench0 --delete-rule $(((2 * i - 1) * rules / (2 * runs))) > "$work/d$i.json"
done

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
# Each edit is applied over the unchanged file (a.json), so every one is a single-rule change.
cold=() noop=() change=() insert=() delete=()
for i in $(seq "$runs"); do
    "$xdpctl" down >/dev/null
    cold+=("$(ms "$xdpctl" apply -f "$work/a.json" --netns "$tag")")
    noop+=("$(ms "$xdpctl" apply -f "$work/a.json" --netns "$tag")")
    change+=("$(ms "$xdpctl" apply -f "$work/b.json" --netns "$tag")")
    "$xdpctl" apply -f "$work/a.json" --netns "$tag" >/dev/null
    insert+=("$(ms "$xdpctl" apply -f "$work/c.json" --netns "$tag")")
    "$xdpctl" apply -f "$work/a.json" --netns "$tag" >/dev/null
    delete+=("$(ms "$xdpctl" apply -f "$work/d$i.json" --netns "$tag")")
done
# One summary, printed and merged into bench.json.
python3 - "$out/bench.json" "$rules" "${cold[*]}" "${noop[*]}" "${change[*]}" "${insert[*]}" "${delete[*]}" <<'EOF'
import json, statistics, sys
path, rules, *runs = sys.argv[1:]
rows = [("cold", "cold", 2000), ("noop", "no-op", 100), ("action", "one-rule change: action", 200),
        ("insert", "one-rule change: insert", 200), ("delete", "one-rule change: delete", 200)]
apply = {"rules": int(rules)}
for (key, _, target), ms in zip(rows, runs):
    values = [int(v) for v in ms.split()]
    apply[key] = {"runs_ms": values, "median_ms": statistics.median(values), "max_ms": max(values), "target_ms": target}
print(f"== apply timings, {rules} ACL rules, medians of {len(apply['cold']['runs_ms'])} (ms; each run's deletes hit a different rule)")
print(f"{'apply':28} {'median':>8} {'max':>8} {'target':>10}")
for key, label, target in rows:
    a = apply[key]
    print(f"{label:28} {a['median_ms']:>8g} {a['max_ms']:>8} {'<= ' + str(target):>10}   runs {' '.join(map(str, a['runs_ms']))}")
data = json.load(open(path))
data["apply"] = apply
json.dump(data, open(path, "w"), indent=1)
EOF
"$xdpctl" status | sed -n 2,4p
