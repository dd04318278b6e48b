#!/usr/bin/env python3
"""Plots the benchmark's JSON: cost per packet against rule count, one line per system
(hot paths and the many-flow trace), and, when bench_veth.py added them, the receiver's
cost per packet on a veth per system.

Usage: plot_bench.py BENCH.json OUT.png
"""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, out: str) -> None:
    data = json.load(open(src))
    rows = data["rows"]
    lines = defaultdict(dict)
    for r in rows:
        n = r["rules"]
        if r["path"].startswith("limit/"):
            continue  # measured at one rule count only: the table has them, a line would not
        lines[f"xdpctl {r.get('profile', 'acl')}: {r['path']}"][n] = r["ns_per_packet"]
        # The baselines do not depend on our rule count: average them over the paths.
        lines.setdefault("trivial XDP_DROP", {}).setdefault(n, []).append(r["xdp_drop_ns_per_packet"])
        if r.get("xdp_filter_ns_per_packet") is not None:
            lines.setdefault("xdp-filter (all features)", {}).setdefault(n, []).append(r["xdp_filter_ns_per_packet"])
    for r in data.get("trace_rows", []):
        lines[f"xdpctl {r['profile']}: trace"][r["rules"]] = r["ns_per_packet"]
        lines.setdefault("trivial XDP_DROP, trace (repeat 1)", {})[r["rules"]] = r["xdp_drop_ns_per_packet"]
    veth = data.get("veth")
    fig, axes = plt.subplots(1, 2 if veth else 1, figsize=(15 if veth else 8, 7), squeeze=False)
    ax = axes[0][0]
    # One colour per profile, one line style per path; baselines in grey and black.
    colors = {"acl": "tab:blue", "fw": "tab:orange", "ipc": "tab:green"}
    styles = {"firewall allow": "-", "firewall drop": "--", "miss -> default": ":", "trace": "-."}
    for name, points in lines.items():
        xs = sorted(points)
        ys = [sum(v) / len(v) if isinstance(v, list) else v for v in (points[x] for x in xs)]
        if name.startswith("xdpctl"):
            profile, path = name[len("xdpctl "):].split(": ", 1)
            ax.plot(xs, ys, styles.get(path, "-"), color=colors.get(profile), marker="o", markersize=3, label=name)
        else:
            ax.plot(xs, ys, "-." if "trace" in name else "-", color="black" if "DROP" in name else "grey", linewidth=2.5, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("firewall rules (ClassBench-shaped profiles)")
    ax.set_ylabel("ns per packet (BPF_PROG_TEST_RUN, median)")
    ax.set_ylim(bottom=0)
    ax.set_title("xdpctl firewall cost against rule count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    if veth:
        bars = axes[0][1]
        names = [r["system"] for r in veth["rows"]]
        costs = [r["receiver_ns_per_packet"] for r in veth["rows"]]
        colors = ["tab:blue" if n.startswith("xdpctl") else "tab:gray" for n in names]
        bars.barh(names, costs, color=colors)
        for y, cost in enumerate(costs):
            bars.text(cost, y, f" {cost:.0f}", va="center")
        bars.invert_yaxis()
        bars.set_xscale("log")
        bars.set_xlabel(f"receiver ns per packet at {veth['rate_pps']} pps offered (NAPI thread CPU time; median of {veth['runs']})")
        bars.set_title(f"receiver cost on a veth, {veth['rules']} rules (trace rows: acl profile)")
        bars.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
