#!/usr/bin/env python3
"""Rate-limit precision under a flood, on a veth pair between two namespaces.

The live-frames generator (`xdpctl-bench --live-frames`, one CPU) floods the peer veth,
where xdpctl runs a rate limit; the receiver's NAPI runs threaded on the other CPU (see
bench_veth.py). Per scenario and window, the passed rate is the growth of the limit's
`passed` counter (`xdpctl stats --json`) over the seconds the generator ran, and the
flood factor is what reached the limit (passed + dropped) over the configured rate.

Scenarios: one source against a per-rule limit; 1,000 sources against a per-source
limit. The rates are a tenth of what the receiver's CPU gets through to the limit
here (about 1.5 Mpps), so the flood is about 10x (each source's share is 10x its own). For the second, the
number of per-source buckets is read from the pinned map with bpftool, and how many of
them were held at their limit to the end of the flood (a bucket's packet TAT, which
runs on the kernel's monotonic clock, is still ahead of the moment the flood ended): a
starved source would have fallen behind.

Usage: bench_ratelimit.py --xdpctl BIN --bench BIN [--windows 3] [--seconds 5] [--json FILE]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from bench_veth import DPORT, DST, SRC, Lab, run

SCENARIOS = [
    # name, limit, sources, configured rate (packets/s over all sources)
    ("1 source, per rule", {"per": "rule", "packets_per_second": 150_000}, 1, 150_000),
    ("1,000 sources, per source", {"per": "source", "packets_per_second": 150}, 1000, 150_000),
]


def passed_dropped(args, env):
    stats = json.loads(run(args.xdpctl, "stats", "--json", env=env))
    limit = stats["interfaces"][0]["rate_limits"][0]
    return limit["passed"], limit["dropped"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xdpctl", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--offered-mpps", type=float, default=10.0, help="generator rate used to size a window")
    p.add_argument("--json")
    args = p.parse_args()
    results = []
    with Lab(f"xrl{os.getpid()}") as lab, tempfile.TemporaryDirectory() as work:
        root = f"/sys/fs/bpf/xdpctl-{lab.dut}"
        env = dict(os.environ, XDPCTL_PIN_ROOT=root)
        for name, limit, sources, rate in SCENARIOS:
            config = os.path.join(work, "rl.json")
            json.dump({"version": 1, "interfaces": [{"name": "vd", "xdp_mode": "native", "rate_limits": [
                dict({"name": "flood", "proto": "udp", "dst_ports": [DPORT]}, **limit)]}]}, open(config, "w"))
            run(args.xdpctl, "apply", "-f", config, "--netns", lab.dut, env=env)
            lab.pin_napi()
            windows = []
            try:
                for _ in range(args.windows):
                    before = passed_dropped(args, env)
                    out = json.loads(run("taskset", "-c", "0", args.bench, "--netns", lab.gen, "--interface", "vg",
                                         "--live-frames", str(int(args.offered_mpps * 1e6 * args.seconds)),
                                         "--flow", f"{SRC},{DST},{DPORT}", "--sources", str(sources)))
                    after = passed_dropped(args, env)
                    seconds = out["seconds"]
                    windows.append({"seconds": round(seconds, 3),
                                    "passed_per_second": round((after[0] - before[0]) / seconds),
                                    "offered_per_second": round(out["frames"] / seconds),
                                    "reached_limit_per_second": round((after[0] + after[1] - before[0] - before[1]) / seconds)})
                buckets = held = None
                if sources > 1:
                    ended = time.monotonic_ns()  # just after the last window's flood
                    dump = json.loads(run("bpftool", "-j", "map", "dump", "pinned", f"{root}/ifaces/vd/dp_rl_sources"))
                    buckets = len(dump)
                    # struct dp_rl_bucket: pkts TAT (u64, 1/16 ns) first.
                    tats = [int.from_bytes(bytes(int(b, 16) for b in e["value"][:8]), "little") >> 4 for e in dump]
                    held = sum(1 for t in tats if t >= ended - 50_000_000)
            finally:
                run(args.xdpctl, "down", env=env)
            measured = [w["passed_per_second"] for w in windows]
            results.append({"scenario": name, "configured_per_second": rate, "windows": windows,
                            "median_per_second": statistics.median(measured),
                            "worst_error": max(abs(m - rate) / rate for m in measured),
                            "flood_factor": round(statistics.median(w["reached_limit_per_second"] for w in windows) / rate, 1),
                            "source_buckets": buckets, "sources_held_at_limit": held})
            print(f"measured {name}", file=sys.stderr)
    print(f"{'scenario':28} {'configured':>11} {'median passed':>14} {'windows (passed/s)':>34} {'worst error':>12} {'flood':>6} {'buckets':>8} {'held':>6}")
    for r in results:
        ws = " ".join(str(w["passed_per_second"]) for w in r["windows"])
        print(f"{r['scenario']:28} {r['configured_per_second']:>11} {r['median_per_second']:>14.0f} {ws:>34} "
              f"{100 * r['worst_error']:>11.2f}% {r['flood_factor']:>5}x {r['source_buckets'] or '-':>8} {r['sources_held_at_limit'] or '-':>6}")
    print(f"({args.windows} windows of {args.seconds} s per scenario; flood = packets reaching the limit / configured rate;"
          " held = per-source buckets still at their limit when the flood ended)")
    if args.json:
        data = json.load(open(args.json)) if os.path.exists(args.json) else {}
        data["rate_limit_precision"] = results
        json.dump(data, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
