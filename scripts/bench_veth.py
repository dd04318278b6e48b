#!/usr/bin/env python3
"""Drop rate on a veth pair between two network namespaces, per system, in one run.

A generator namespace sends UDP frames with live-frames BPF_PROG_TEST_RUN
(`xdpctl-bench --live-frames`, XDP_TX out of its veth) as fast as one CPU can; the peer
veth in the device-under-test namespace drops them with each system in turn. The peer's
NAPI runs threaded on the other CPU, so the receiver, not the generator's CPU, sets the
rate; what it cannot take is lost at the veth ring and not counted. Each system sees the
same rule set: 1,000 rules that miss (source 10.99.x.y, udp/9) and one that matches.

Rates are packets the system dropped per second of sending, medians of --runs runs; the
table gives ratios to trivial XDP_DROP and to nftables with 1,000 linear rules measured in
the same run. Results are merged into --json under "veth".

Usage: bench_veth.py --xdpctl BIN --bench BIN [--runs 5] [--frames 5000000] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

RULES = 1000
SRC, DST, DPORT = "10.201.0.1", "10.201.0.2", 9
MISS = [f"10.99.{i // 250}.{i % 250 + 1}" for i in range(RULES)]


def merge_json(path, key, value):
    """Adds `value` under `key` to the JSON document at `path` (created if absent)."""
    data = json.load(open(path)) if os.path.exists(path) else {}
    data[key] = value
    json.dump(data, open(path, "w"), indent=2)


def xdp_drops(ethtool_stats):
    """Frames a veth's XDP program dropped, from its `ethtool -S` output."""
    return sum(int(l.split(":")[1]) for l in ethtool_stats.splitlines() if l.strip().startswith("rx_queue_") and "_xdp_drops" in l)


def run(*args, input=None, env=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, input=input, env=env).stdout


class Lab:
    """Two namespaces joined by a veth pair; removed on exit."""

    def __init__(self, tag):
        self.gen, self.dut = f"{tag}g", f"{tag}d"

    def __enter__(self):
        for ns in (self.gen, self.dut):
            run("ip", "netns", "add", ns)
        run("ip", "-n", self.gen, "link", "add", "vg", "type", "veth", "peer", "name", "vd", "netns", self.dut)
        run("ip", "-n", self.gen, "addr", "add", f"{SRC}/24", "dev", "vg")
        run("ip", "-n", self.dut, "addr", "add", f"{DST}/24", "dev", "vd")
        # The generator's frames carry this destination MAC (the IP stack drops other hosts' frames).
        run("ip", "-n", self.dut, "link", "set", "vd", "address", "02:00:00:00:00:01")
        for ns, dev in ((self.gen, "vg"), (self.dut, "vd")):
            run("ip", "-n", ns, "link", "set", dev, "up")
        # GRO gives the veth a NAPI instance when no XDP program is attached (nftables, iptables).
        self.dut_sh("ethtool -K vd gro on")
        run("ip", "netns", "exec", self.dut, "sh", "-c", "echo 1 > /sys/class/net/vd/threaded")  # its own /sys
        return self

    def __exit__(self, *exc):
        for ns in (self.gen, self.dut):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def dut_sh(self, script, input=None):
        """Runs in the device-under-test's network namespace, on the host's mounts (bpffs pins)."""
        return run("nsenter", f"--net=/run/netns/{self.dut}", "sh", "-c", script, input=input)

    def pin_napi(self):
        """Moves the receiver's NAPI threads to CPU 1 (attaching XDP recreates them)."""
        pids = subprocess.run(["pgrep", "^napi/vd-"], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["taskset", "-pc", "1", pid], capture_output=True)

    def send(self, bench, frames, sources=1):
        """Sends `frames` frames from CPU 0 with the live-frames generator (`sources`
        IPv4 source addresses in turn); returns its report (frames, seconds)."""
        return json.loads(run("taskset", "-c", "0", bench, "--netns", self.gen, "--interface", "vg", "--live-frames", str(frames),
                              "--flow", f"{SRC},{DST},{DPORT}", "--sources", str(sources)))

    def xdp_drops(self):
        return xdp_drops(self.dut_sh("ethtool -S vd"))


def xdpctl_config():
    rules = [{"name": f"miss-{i}", "action": "drop", "src": [f"{a}/32"], "proto": "udp", "dst_ports": [DPORT]} for i, a in enumerate(MISS)]
    rules.append({"name": "hit", "action": "drop", "src": [f"{SRC}/32"], "proto": "udp", "dst_ports": [DPORT]})
    return {"version": 1, "interfaces": [{"name": "vd", "xdp_mode": "native", "firewall": {"default_action": "allow", "rules": rules}}]}


def nft_counter(lab):
    ruleset = json.loads(lab.dut_sh("nft -j list table netdev bench"))["nftables"]
    for item in ruleset:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return expr["counter"]["packets"]
    raise RuntimeError("nftables rule counter not found")


def iptables_counter(lab, binary):
    lines = lab.dut_sh(f"{binary} -t raw -L PREROUTING -v -x -n").splitlines()
    return int(lines[-1].split()[0])  # the matching rule is last


def systems(args, lab, work):
    pin = f"/sys/fs/bpf/xdpctl-{lab.dut}-floor"
    env = dict(os.environ, XDPCTL_PIN_ROOT=f"/sys/fs/bpf/xdpctl-{lab.dut}")
    config = os.path.join(work, "fw.json")
    json.dump(xdpctl_config(), open(config, "w"))
    nft_linear = "table netdev bench {\n chain in {\n  type filter hook ingress device vd priority 0;\n" + "".join(
        f"  ip saddr {a} udp dport {DPORT} drop\n" for a in MISS) + f"  ip saddr {SRC} udp dport {DPORT} counter drop\n }}\n}}\n"
    nft_set = ("table netdev bench {\n set blocked { type ipv4_addr; elements = { " + ", ".join(MISS + [SRC]) + " } }\n"
               " chain in {\n  type filter hook ingress device vd priority 0;\n"
               f"  ip saddr @blocked udp dport {DPORT} counter drop\n }}\n}}\n")
    ipt = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + "".join(
        f"-A PREROUTING -s {a}/32 -p udp --dport {DPORT} -j DROP\n" for a in MISS + [SRC]) + "COMMIT\n"
    return [
        ("trivial XDP_DROP",
         lambda: run(args.bench, "--netns", lab.dut, "--interface", "vd", "--attach-drop", pin),
         lambda: os.unlink(pin), lab.xdp_drops),
        (f"xdpctl firewall, {RULES} rules",
         lambda: run(args.xdpctl, "apply", "-f", config, "--netns", lab.dut, env=env),
         lambda: run(args.xdpctl, "down", env=env), lab.xdp_drops),
        ("xdp-filter, matching rule",
         lambda: lab.dut_sh(f"xdp-filter load -m native vd && xdp-filter ip {SRC} -m src"),
         lambda: lab.dut_sh("xdp-filter unload vd"), lab.xdp_drops),
        (f"nftables ingress, {RULES} linear rules",
         lambda: lab.dut_sh("nft -f -", input=nft_linear), lambda: lab.dut_sh("nft delete table netdev bench"),
         lambda: nft_counter(lab)),
        (f"nftables ingress, {RULES}-element set",
         lambda: lab.dut_sh("nft -f -", input=nft_set), lambda: lab.dut_sh("nft delete table netdev bench"),
         lambda: nft_counter(lab)),
    ] + [
        (f"{binary} raw PREROUTING, {RULES} rules",
         (lambda b=binary: lab.dut_sh(f"{b}-restore", input=ipt)),
         (lambda b=binary: lab.dut_sh(f"{b} -t raw -F PREROUTING")),
         (lambda b=binary: iptables_counter(lab, b)))
        for binary in ("iptables-legacy", "iptables-nft")
    ]


def measure(args, lab, count, frames):
    """Sends `frames` from CPU 0; returns (dropped, offered) in Mpps."""
    before = count()
    out = lab.send(args.bench, frames)
    return (count() - before) / out["seconds"] / 1e6, frames / out["seconds"] / 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xdpctl", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--frames", type=int, default=5_000_000)
    p.add_argument("--json")
    args = p.parse_args()
    with Lab(f"xveth{os.getpid()}") as lab, tempfile.TemporaryDirectory() as work:
        table = systems(args, lab, work)
        runs = {name: [] for name, *_ in table}
        # Round robin, so the machine's noise falls on every system alike.
        for n in range(args.runs):
            for name, setup, teardown, count in table:
                setup()
                try:
                    lab.pin_napi()
                    measure(args, lab, count, frames=args.frames // 10)  # warm-up
                    runs[name].append(measure(args, lab, count, frames=args.frames))
                finally:
                    teardown()
            print(f"round {n + 1} of {args.runs} measured", file=sys.stderr)
    results = [{"system": name, "mpps": round(statistics.median([r for r, _ in rs]), 3),
                "runs_mpps": [round(r, 3) for r, _ in rs],
                "offered_mpps": round(statistics.median([o for _, o in rs]), 3)} for name, rs in runs.items()]
    floor = next(r["mpps"] for r in results if r["system"] == "trivial XDP_DROP")
    nft = next(r["mpps"] for r in results if "linear" in r["system"])
    print(f"{'system':42} {'Mpps':>7} {'offered':>8} {'÷XDP_DROP':>10} {'÷nft linear':>12}")
    for r in results:
        print(f"{r['system']:42} {r['mpps']:7.2f} {r['offered_mpps']:8.2f} {r['mpps'] / floor:9.2f}x {r['mpps'] / nft:11.2f}x")
    print(f"(medians of {args.runs} runs of {args.frames} frames; drops counted at the receiver per second of sending)")
    if args.json:
        merge_json(args.json, "veth", {"runs": args.runs, "frames": args.frames, "rules": RULES, "rows": results})


if __name__ == "__main__":
    main()
