#!/usr/bin/env python3
"""Receiver cost and drop rate on a veth pair between two network namespaces, per system,
in one run.

    gen: [generator] vg -- vr (relay: XDP redirect) ~> vs -- d<pid> :dut [system under test]

The generator (`xdpctl-bench --send`: AF_PACKET with the qdisc bypassed, sendmmsg of
prebuilt frames, pinned to CPU 0) sends into vg. Its peer vr redirects every frame with
XDP into vs, so the receiver d<pid> gets XDP frames, as from a NIC's ring, not socket
buffers (a veth's XDP copies a socket buffer's head first; see bpf/bench/xdp_relay.bpf.c).
The receiver's NAPI runs threaded, pinned to CPU 1, and every system does all of its work
in that thread.

Per system and run:
  receiver cost   the NAPI thread's CPU time (/proc/PID/schedstat) over the packets the
                  system processed, with the generator paced to --rate (below every
                  XDP system's saturation); it includes waking the thread, the same for
                  every system, so it is also given net of the trivial XDP_DROP's;
  drop rate       packets processed per second with the generator unpaced; where that is
                  below the rate offered, the receiver, not the generator, set it.

Systems, each given --rules rules that miss (sources 10.99.x.y, udp/9) and, last, one that
matches: trivial XDP_DROP (no rules), xdpctl's firewall, the same with `xdpctl capture
--verdict drop` recording during the flood (its rate bound keeps the ring's share small;
the row's Mpps against the firewall's is the capture figure), xdp-filter (one hash lookup),
nftables netdev ingress (linear rules, and a set), iptables raw PREROUTING (legacy and
nf_tables). Then the many-flow rows: XDP_DROP and xdpctl's firewall at each
--trace-rules count of the acl profile, sent that rule set's trace (10,000 distinct
packets, `xdpctl-bench --send --trace`), every action and the default turned to drop so
that each packet is processed by the firewall alone.

Medians of --runs runs, round robin; ratios to XDP_DROP and nftables with a set measured
in the same run. Results are merged into --json under "veth".

Usage: bench_veth.py --xdpctl BIN --bench BIN [--runs 5] [--seconds 2] [--rate 400000]
                     [--rules 10000] [--trace-rules 1000 10000 100000] [--json FILE]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRC, DST, DPORT = "10.201.0.1", "10.201.0.2", 9


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


class Namespaces:
    """Network namespaces self.namespaces and bpffs pins self.pins that build() sets up;
    all removed on exit, also when build() fails half way."""

    def __enter__(self):
        try:
            self.build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for pin in self.pins:
            if os.path.exists(pin):
                os.unlink(pin)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def dut_sh(self, script, input=None):
        """Runs in the device-under-test's network namespace, on the host's mounts (bpffs pins)."""
        return run("nsenter", f"--net=/run/netns/{self.dut}", "sh", "-c", script, input=input)


class Lab(Namespaces):
    """The generator's namespace (vg, its relay vr -> vs) and the receiver's (self.dev,
    threaded NAPI on CPU 1)."""

    def __init__(self, tag, bench):
        self.gen, self.dut, self.bench = f"{tag}g", f"{tag}d", bench
        self.namespaces = [self.gen, self.dut]
        self.dev = f"d{os.getpid() % 100000}"  # names the NAPI threads: unique on the host
        self.relay_pin = f"/sys/fs/bpf/{tag}-relay"
        self.pins = [self.relay_pin]

    def build(self):
        for ns in self.namespaces:
            run("ip", "netns", "add", ns)
        run("ip", "-n", self.gen, "link", "add", "vg", "type", "veth", "peer", "name", "vr")
        run("ip", "-n", self.gen, "link", "add", "vs", "type", "veth", "peer", "name", self.dev, "netns", self.dut)
        run("ip", "-n", self.dut, "addr", "add", f"{DST}/24", "dev", self.dev)
        # The generator's frames carry this destination MAC (the IP stack drops other hosts' frames).
        run("ip", "-n", self.dut, "link", "set", self.dev, "address", "02:00:00:00:00:01")
        for dev in ("vg", "vr", "vs"):
            run("ip", "-n", self.gen, "link", "set", dev, "up")
        run("ip", "-n", self.dut, "link", "set", self.dev, "up")
        run(self.bench, "--netns", self.gen, "--interface", "vr", "--attach-drop", self.relay_pin, "--relay-to", "vs")
        # GRO gives the receiver a NAPI instance when no XDP program is attached (nftables,
        # iptables); ip netns exec, for the namespace's own /sys.
        self.dut_sh(f"ethtool -K {self.dev} gro on")
        run("ip", "netns", "exec", self.dut, "sh", "-c", f"echo 1 > /sys/class/net/{self.dev}/threaded")

    def napi_threads(self):
        return subprocess.run(["pgrep", f"^napi/{self.dev}-"], capture_output=True, text=True).stdout.split()

    def pin_napi(self):
        """Moves the receiver's NAPI threads to CPU 1 (attaching XDP recreates them)."""
        for pid in self.napi_threads():
            subprocess.run(["taskset", "-pc", "1", pid], capture_output=True)

    def napi_ns(self):
        """CPU time of the receiver's NAPI threads so far, in ns."""
        total = 0
        for pid in self.napi_threads():
            try:
                total += int(open(f"/proc/{pid}/schedstat").read().split()[0])
            except OSError:
                pass
        return total

    def send(self, seconds, rate=0, sources=1, trace=None):
        """Sends from CPU 0 for `seconds` (paced to `rate` when not 0): --flow's frames from
        `sources` IPv4 sources in turn, or the acl trace of `trace` rules. Returns the
        generator's report (frames, seconds, rate_pps)."""
        what = ["--trace", f"acl:{trace}"] if trace else ["--flow", f"{SRC},{DST},{DPORT}", "--sources", str(sources)]
        return json.loads(run("taskset", "-c", "0", self.bench, "--netns", self.gen, "--interface", "vg", "--send", str(1 << 40),
                              "--seconds", str(seconds), "--rate", str(rate), *what))

    def xdp_drops(self):
        return xdp_drops(self.dut_sh(f"ethtool -S {self.dev}"))


CAPTURE_ROW = "xdpctl firewall, {rules} rules, drop capture on"


class Capture:
    """`xdpctl capture --verdict drop -w FILE` running beside the flood, on the
    generator's CPU (0): the receiver's CPU pays only what the programs do for it. Keeps
    each capture's closing summary."""

    def __init__(self, xdpctl, netns, env, path):
        self.xdpctl, self.netns, self.env, self.path = xdpctl, netns, env, path
        self.summaries = []

    def start(self):
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(["taskset", "-c", "0", self.xdpctl, "capture", "--netns", self.netns, "--verdict", "drop",
                                      "--duration", "300", "-w", self.path], env=self.env, stdout=subprocess.DEVNULL, stderr=self.log)
        for _ in range(200):  # it says "capturing" once the programs record
            self.log.seek(0)
            if "capturing" in self.log.read() or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("xdpctl capture did not start")
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise RuntimeError(f"xdpctl capture: {self.log.read()}")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.log.seek(0)
        self.summaries.append(self.log.read().strip().splitlines()[-1])
        os.unlink(self.path)


def systems(args, lab, work):
    """(name, trace rules or None, setup, teardown, processed-packets counter) per system,
    and the capture the capture row runs."""
    dev, miss = lab.dev, [f"10.99.{i // 250}.{i % 250 + 1}" for i in range(args.rules)]
    pin = f"/sys/fs/bpf/xdpctl-{lab.dut}-floor"
    env = dict(os.environ, XDPCTL_PIN_ROOT=f"/sys/fs/bpf/xdpctl-{lab.dut}")
    rules = [{"name": f"miss-{i}", "action": "drop", "src": [f"{a}/32"], "proto": "udp", "dst_ports": [DPORT]} for i, a in enumerate(miss)]
    rules.append({"name": "hit", "action": "drop", "src": [f"{SRC}/32"], "proto": "udp", "dst_ports": [DPORT]})
    config = os.path.join(work, "fw.json")
    json.dump({"version": 1, "interfaces": [{"name": dev, "xdp_mode": "native", "firewall": {"default_action": "allow", "rules": rules}}]}, open(config, "w"))

    def traced(n):
        """The acl rule set of `n` rules (the one the trace is built from), all drops."""
        doc = json.loads(run(args.bench, "--emit-config", str(n), "--interface", dev))
        fw = doc["interfaces"][0]["firewall"]
        fw["default_action"] = "drop"
        for rule in fw["rules"]:
            rule["action"] = "drop"
        path = os.path.join(work, f"trace-{n}.json")
        json.dump(doc, open(path, "w"))
        return path

    def nft_counter():
        for item in json.loads(lab.dut_sh("nft -j list table netdev bench"))["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return expr["counter"]["packets"]
        raise RuntimeError("nftables rule counter not found")

    def iptables_counter(binary):
        return int(lab.dut_sh(f"{binary} -t raw -L PREROUTING -v -x -n").splitlines()[-1].split()[0])  # the matching rule is last

    hook = f"  type filter hook ingress device {dev} priority 0;\n"
    nft_linear = "table netdev bench {\n chain in {\n" + hook + "".join(
        f"  ip saddr {a} udp dport {DPORT} drop\n" for a in miss) + f"  ip saddr {SRC} udp dport {DPORT} counter drop\n }}\n}}\n"
    nft_set = ("table netdev bench {\n set blocked { type ipv4_addr; elements = { " + ", ".join(miss + [SRC]) + " } }\n"
               " chain in {\n" + hook + f"  ip saddr @blocked udp dport {DPORT} counter drop\n }}\n}}\n")
    ipt = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + "".join(
        f"-A PREROUTING -s {a}/32 -p udp --dport {DPORT} -j DROP\n" for a in miss + [SRC]) + "COMMIT\n"
    floor = (lambda: run(args.bench, "--netns", lab.dut, "--interface", dev, "--attach-drop", pin), lambda: os.unlink(pin), lab.xdp_drops)
    capture = Capture(args.xdpctl, lab.dut, env, os.path.join(work, "drops.pcapng"))
    rows = [
        ("trivial XDP_DROP", None, *floor),
        (f"xdpctl firewall, {args.rules} rules", None,
         lambda: run(args.xdpctl, "apply", "-f", config, "--netns", lab.dut, env=env),
         lambda: run(args.xdpctl, "down", env=env), lab.xdp_drops),
        (CAPTURE_ROW.format(rules=args.rules), None,
         lambda: (run(args.xdpctl, "apply", "-f", config, "--netns", lab.dut, env=env), capture.start()),
         lambda: (capture.stop(), run(args.xdpctl, "down", env=env)), lab.xdp_drops),
        ("xdp-filter, matching rule", None,
         lambda: lab.dut_sh(f"xdp-filter load -m native {dev} && xdp-filter ip {SRC} -m src"),
         lambda: lab.dut_sh(f"xdp-filter unload {dev}"), lab.xdp_drops),
        (f"nftables ingress, {args.rules} linear rules", None,
         lambda: lab.dut_sh("nft -f -", input=nft_linear), lambda: lab.dut_sh("nft delete table netdev bench"), nft_counter),
        (f"nftables ingress, {args.rules}-element set", None,
         lambda: lab.dut_sh("nft -f -", input=nft_set), lambda: lab.dut_sh("nft delete table netdev bench"), nft_counter),
    ] + [
        (f"{binary} raw PREROUTING, {args.rules} rules", None,
         (lambda b=binary: lab.dut_sh(f"{b}-restore", input=ipt)),
         (lambda b=binary: lab.dut_sh(f"{b} -t raw -F PREROUTING")),
         (lambda b=binary: iptables_counter(b)))
        for binary in ("iptables-legacy", "iptables-nft")
    ]
    if args.trace_rules:
        rows.append((f"trivial XDP_DROP, acl trace", max(args.trace_rules), *floor))
    for n in args.trace_rules:
        path = traced(n)
        rows.append((f"xdpctl firewall, acl {n} rules, trace", n,
                     lambda p=path: run(args.xdpctl, "apply", "-f", p, "--netns", lab.dut, env=env),
                     lambda: run(args.xdpctl, "down", env=env), lab.xdp_drops))
    return rows, capture


def measure(lab, count, seconds, rate, trace):
    """One send; returns (processed, offered, napi ns) per second, or per packet for ns."""
    before, cpu = count(), lab.napi_ns()
    out = lab.send(seconds, rate=rate, trace=trace)
    processed, busy = count() - before, lab.napi_ns() - cpu
    return processed / out["seconds"], out["frames"] / out["seconds"], busy / max(processed, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xdpctl", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each send")
    p.add_argument("--rate", type=int, default=400_000, help="offered packets per second for the receiver cost")
    p.add_argument("--rules", type=int, default=10_000)
    p.add_argument("--trace-rules", type=int, nargs="*", default=[1000, 10000, 100000])
    p.add_argument("--json")
    args = p.parse_args()
    with Lab(f"xveth{os.getpid()}", args.bench) as lab, tempfile.TemporaryDirectory() as work:
        table, capture = systems(args, lab, work)
        runs = {name: [] for name, *_ in table}
        # Round robin, so the machine's noise falls on every system alike.
        for n in range(args.runs):
            for name, trace, setup, teardown, count in table:
                setup()
                try:
                    lab.pin_napi()
                    measure(lab, count, 0.5, args.rate, trace)  # warm-up
                    paced = measure(lab, count, args.seconds, args.rate, trace)
                    full = measure(lab, count, args.seconds, 0, trace)
                    runs[name].append((paced, full))
                finally:
                    teardown()
            print(f"round {n + 1} of {args.runs} measured", file=sys.stderr)
    med = statistics.median
    results = [{"system": name, "trace_rules": trace,
                "receiver_ns_per_packet": round(med(p[2] for p, _ in rs), 1),
                "runs_receiver_ns": [round(p[2], 1) for p, _ in rs],
                "paced_processed_pps": round(med(p[0] for p, _ in rs)), "paced_offered_pps": round(med(p[1] for p, _ in rs)),
                "mpps": round(med(f[0] for _, f in rs) / 1e6, 3), "offered_mpps": round(med(f[1] for _, f in rs) / 1e6, 3),
                "runs_mpps": [round(f[0] / 1e6, 3) for _, f in rs]}
               for (name, trace, *_), rs in zip(table, runs.values())]
    floor = next(r for r in results if r["system"] == "trivial XDP_DROP")
    trace_floor = next((r for r in results if r["system"] == "trivial XDP_DROP, acl trace"), floor)
    nft_set = next(r for r in results if "set" in r["system"])
    for r in results:
        base = trace_floor if r["trace_rules"] else floor
        r["net_ns_per_packet"] = round(r["receiver_ns_per_packet"] - base["receiver_ns_per_packet"], 1)
        r["per_xdp_drop"] = round(r["receiver_ns_per_packet"] / base["receiver_ns_per_packet"], 2)
        r["per_nft_set"] = round(r["receiver_ns_per_packet"] / nft_set["receiver_ns_per_packet"], 2)
        r["saturated"] = r["mpps"] < 0.97 * r["offered_mpps"]
    print(f"{'system':44} {'ns/pkt':>7} {'net':>6} {'÷XDP_DROP':>10} {'÷nft set':>9} {'Mpps':>6} {'offered':>8}")
    for r in results:
        print(f"{r['system']:44} {r['receiver_ns_per_packet']:7.0f} {r['net_ns_per_packet']:6.0f} {r['per_xdp_drop']:9.2f}x "
              f"{r['per_nft_set']:8.2f}x {r['mpps']:6.2f} {r['offered_mpps']:8.2f}{'  (receiver-bound)' if r['saturated'] else ''}")
    plain = next(r for r in results if r["system"] == f"xdpctl firewall, {args.rules} rules")
    captured = next(r for r in results if r["system"] == CAPTURE_ROW.format(rules=args.rules))
    # Two figures: the rate processed (bound by the generator here, which shares its CPU
    # with the capture's reader), and what the receiver could process, the inverse of its
    # cost per packet.
    ratio = round(statistics.median(c / f for c, f in zip(captured["runs_mpps"], plain["runs_mpps"])), 2)
    capacity = round(statistics.median(f / c for c, f in zip(captured["runs_receiver_ns"], plain["runs_receiver_ns"])), 2)
    print(f"drop capture during the flood: {captured['mpps']:.2f} Mpps processed against {plain['mpps']:.2f} without it "
          f"(median of each round's ratio {ratio:.2f}x); receiver cost {captured['receiver_ns_per_packet'] - plain['receiver_ns_per_packet']:+.0f} "
          f"ns/pkt, so the receiver's capacity {capacity:.2f}x (target for both >= 0.8x). Last capture: {capture.summaries[-1]}")
    print(f"(medians of {args.runs} runs; ns/pkt: the receiver's NAPI thread CPU time per processed packet at {args.rate} "
          f"pps offered, net of XDP_DROP's (trace rows: of XDP_DROP on the trace); Mpps: processed per second, generator unpaced, "
          f"{args.seconds} s sends)")
    if args.json:
        merge_json(args.json, "veth", {"runs": args.runs, "seconds": args.seconds, "rate_pps": args.rate, "rules": args.rules, "rows": results,
                                       "capture": {"processed_per_no_capture": ratio, "capacity_per_no_capture": capacity, "target": 0.8,
                                                   "summaries": capture.summaries}})


if __name__ == "__main__":
    main()
