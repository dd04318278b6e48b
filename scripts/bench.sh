#!/usr/bin/env bash
# The benchmark command. Prints tables of medians and ratios against baselines measured in
# the same run:
#   1. program cost (PROG_TEST_RUN ns/packet) per firewall path at several rule counts,
#      beside a trivial XDP_DROP program and xdp-filter on the same frames;
#   2. apply timings through the real xdpctl on a veth in a private network namespace:
#      cold apply, no-op apply, one-rule change.
# Options go to xdpctl-bench (e.g. --rules 10 1000 10000 100000); results are also written
# to $BENCH_OUT (default bench-out/) as bench.json and bench.png (cost against rule count).
# APPLY_RULES (default 100000) and APPLY_RUNS (default 5) set the apply part.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product xdpctl-bench 2>&1 | tail -1
swift build -c release --product xdpctl 2>&1 | tail -1
bench=.build/release/xdpctl-bench xdpctl=$PWD/.build/release/xdpctl

out=${BENCH_OUT:-bench-out}
mkdir -p "$out"
python3 -c "import matplotlib" 2>/dev/null || pip install -q matplotlib 2>/dev/null

echo "== program cost"
"$bench" "$@" --json "$out/bench.json"
python3 scripts/plot_bench.py "$out/bench.json" "$out/bench.png" && echo "(plot: $out/bench.png, data: $out/bench.json)"

rules=${APPLY_RULES:-100000} runs=${APPLY_RUNS:-5}
tag="xbench$$" work=$(mktemp -d)
export XDPCTL_PIN_ROOT="/sys/fs/bpf/xdpctl-$tag"
cleanup() { "$xdpctl" down >/dev/null 2>&1 || true; ip netns del "$tag" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$tag"
ip -n "$tag" link add xbench0 type veth peer name xbench1
ip -n "$tag" link set xbench0 up; ip -n "$tag" link set xbench1 up
"$bench" --emit-config "$rules" --interface xbench0 > "$work/a.json"
"$bench" --emit-config "$rules" --interface xbench0 --flip-rule $((rules / 2)) > "$work/b.json"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
cold=() noop=() change=()
for _ in $(seq "$runs"); do
    "$xdpctl" down >/dev/null
    cold+=("$(ms "$xdpctl" apply -f "$work/a.json" --netns "$tag")")
    noop+=("$(ms "$xdpctl" apply -f "$work/a.json" --netns "$tag")")
    change+=("$(ms "$xdpctl" apply -f "$work/b.json" --netns "$tag")")
done
echo "== apply timings, $rules ACL rules, medians of $runs (ms; runs: cold ${cold[*]} / no-op ${noop[*]} / one-rule ${change[*]})"
printf '%-22s %8s %10s\n' "apply" "median" "target"
printf '%-22s %8s %10s\n' "cold" "$(printf '%s\n' "${cold[@]}" | median)" "<= 2000"
printf '%-22s %8s %10s\n' "no-op" "$(printf '%s\n' "${noop[@]}" | median)" "<= 100"
printf '%-22s %8s %10s\n' "one-rule change" "$(printf '%s\n' "${change[@]}" | median)" "<= 200"
"$xdpctl" status | sed -n 2,4p
