#!/usr/bin/env python3
"""NAT on a router namespace: the rate one CPU of the router forwards, per system, in one run.

    gen (LAN, 10.204.1.2) vg -- vl [dut: router, 10.204.1.1 | 10.204.2.1] vw -- vx far (WAN, 10.204.2.2)

One end sends UDP frames through an AF_PACKET socket (`xdpctl-bench --send`: sendmmsg of skbs,
which the router's stack takes like any others; live frames do not survive XDP_PASS), and the
router's work runs in the softirq the sending raises, on the same CPU (CPU 0; a threaded NAPI
stalled the stack path here). The other end drops what arrives with XDP_DROP and counts it.
So a packet's time is the generator's, the router's and the sink's drop: the generator alone
(the router's veth dropping at once with XDP_DROP) is measured in the same run and taken
out, leaving the router's nanoseconds per packet (with the sink's XDP_DROP, the same for
every system). Each system does the same job on the same topology:

  snat out        LAN -> WAN, one established flow, source rewritten to 10.204.2.1
  snat reply      WAN -> LAN, that flow's replies, destination rewritten back
  dnat in         WAN -> 10.204.2.1:8080, sent on to 10.204.1.2:8080
  new flows out   LAN -> WAN, 60,000 sources in turn, each frame a new flow (a fresh
                  source range and destination port every run)

Systems: the kernel forwarding with no NAT (the floor of the stack path), nftables (masquerade
and dnat with conntrack), and xdpctl; the first two with xdpctl's bare XDP program on the
router's veths, so all three pay the same XDP entry. Rates are packets delivered per second of sending,
medians of --runs runs, round robin; cost ratios are the system's router nanoseconds over
nftables' (below 1: cheaper per packet than nftables). Results are merged into --json under
"nat".

Usage: bench_nat.py --xdpctl BIN --bench BIN [--runs 5] [--frames 300000] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench_veth import Namespaces, merge_json, run, xdp_drops

LAN, ROUTER_LAN, ROUTER_WAN, FAR = "10.204.1.2", "10.204.1.1", "10.204.2.1", "10.204.2.2"
PORT = 40000        # the generator's source port; the flows use it as destination too
DNAT_PORT = 8080
NEW_FLOWS = 60000


class Lab(Namespaces):
    """gen -- dut -- far."""

    def __init__(self, tag, bench):
        self.gen, self.dut, self.far, self.bench = f"{tag}g", f"{tag}d", f"{tag}f", bench
        self.namespaces = [self.gen, self.dut, self.far]
        self.pins = [f"/sys/fs/bpf/{tag}-sink-{end}" for end in ("gen", "far")]

    def build(self):
        for ns in self.namespaces:
            run("ip", "netns", "add", ns)
        run("ip", "-n", self.gen, "link", "add", "vg", "type", "veth", "peer", "name", "vl", "netns", self.dut)
        run("ip", "-n", self.far, "link", "add", "vx", "type", "veth", "peer", "name", "vw", "netns", self.dut)
        for ns, dev, addr in ((self.gen, "vg", LAN), (self.dut, "vl", ROUTER_LAN), (self.dut, "vw", ROUTER_WAN), (self.far, "vx", FAR)):
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        # The generator's frames go to this MAC: the router's ends carry it.
        for dev in ("vl", "vw"):
            run("ip", "-n", self.dut, "link", "set", dev, "address", "02:00:00:00:00:01")
        for ns, dev in ((self.gen, "vg"), (self.dut, "vl"), (self.dut, "vw"), (self.far, "vx")):
            run("ip", "-n", ns, "link", "set", dev, "up")
        mac = {ns: json.loads(run("ip", "-j", "-n", ns, "link", "show", dev))[0]["address"] for ns, dev in ((self.gen, "vg"), (self.far, "vx"))}
        self.dut_sh(f"ip neigh add {LAN} lladdr {mac[self.gen]} dev vl nud permanent && "
                    f"ip neigh add {FAR} lladdr {mac[self.far]} dev vw nud permanent && "
                    "ip route add 10.0.0.0/8 dev vl && "  # the new-flow sources, so the reverse-path check passes
                    "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vl.rp_filter=0")
        # No GRO: it would merge the flow's frames before the stack (and count them as
        # one at the sink). Every system runs an XDP program on both router ends
        # (xdpctl's, bare where it has no rules), which gives the veth its NAPI.
        self.dut_sh("ethtool -K vl gro off && ethtool -K vw gro off")
        # The ends drop and count what the router delivers (XDP_DROP, counted by the veth).
        for pin, (ns, dev) in zip(self.pins, ((self.gen, "vg"), (self.far, "vx"))):
            run(self.bench, "--netns", ns, "--interface", dev, "--attach-drop", pin)

    def drops(self, ns, dev):
        return xdp_drops(run("ip", "netns", "exec", ns, "ethtool", "-S", dev))

    def send(self, ns, dev, flow, frames, sources=1):
        return json.loads(run("taskset", "-c", "0", self.bench, "--netns", ns, "--interface", dev, "--send", str(frames),
                              "--flow", flow, "--sources", str(sources)))


# The paths: (name, sender namespace attr, sender device, flow, sink namespace attr, sink device, sources).
PATHS = [
    ("snat out", "gen", "vg", f"{LAN},{FAR},{PORT}", "far", "vx", 1),
    ("snat reply", "far", "vx", f"{FAR},{ROUTER_WAN},{PORT}", "gen", "vg", 1),
    ("dnat in", "far", "vx", f"{FAR},{ROUTER_WAN},{DNAT_PORT}", "gen", "vg", 1),
    ("new flows out", "gen", "vg", None, "far", "vx", NEW_FLOWS),
]


def bare_config():
    return {"version": 1, "interfaces": [{"name": "vl"}, {"name": "vw"}]}


def xdpctl_config():
    # The LAN side takes NAT's fast path: the generator's frames carry whole checksums (a
    # veth peer sending with TX checksum offload would not, hence "auto" is off on veths).
    return {"version": 1, "interfaces": [{"name": "vl", "nat_fast_path": "on"}, {"name": "vw", "nat": {
        "snat": [{"name": "masq", "src": ["10.0.0.0/8"], "port_range": "1024-65535"}],
        "dnat": [{"name": "web", "proto": "udp", "dst": ROUTER_WAN, "dst_port": DNAT_PORT, "to_address": LAN, "to_port": DNAT_PORT}]}}]}


NFT = f"""table ip benchnat {{
 chain pre {{ type nat hook prerouting priority -100; iifname "vw" udp dport {DNAT_PORT} dnat to {LAN}:{DNAT_PORT}; }}
 chain post {{ type nat hook postrouting priority 100; oifname "vw" masquerade; }}
}}
"""


def systems(args, lab, work):
    env = dict(os.environ, XDPCTL_PIN_ROOT=f"/sys/fs/bpf/xdpctl-{lab.dut}")
    config, bare = os.path.join(work, "nat.json"), os.path.join(work, "bare.json")
    json.dump(xdpctl_config(), open(config, "w"))
    json.dump(bare_config(), open(bare, "w"))
    apply = lambda f: run(args.xdpctl, "apply", "-f", f, "--netns", lab.dut, env=env)
    down = lambda: run(args.xdpctl, "down", env=env)
    return [
        ("kernel forwarding, no NAT", lambda: apply(bare), down),
        ("nftables masquerade + dnat", lambda: (apply(bare), lab.dut_sh("nft -f -", input=NFT)),
         lambda: (lab.dut_sh("nft delete table ip benchnat"), down())),
        ("xdpctl nat", lambda: apply(config), down),
    ]


def softirq_ticks(cpu=0):
    """CPU `cpu`'s time in softirq so far, in clock ticks (/proc/stat; sampled each tick)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                return int(line.split()[7])
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def measure(lab, path, frames, run_index, floor=False):
    """Sends a path's frames; returns (ns per delivered frame, frames delivered of those sent,
    softirq ns per delivered frame on the generator's CPU: the receiving side's work, which
    runs there in softirq context, apart from the generator's own, which is system time).
    `floor`: the router's receiving veth drops them at once (the generator alone)."""
    name, sender, sdev, flow, sink, kdev, sources = path
    if flow is None:
        # A source range and a destination port of its own per run: every frame a new flow,
        # and masquerade's ports for the previous runs' flows (alive for 30 s) are not this
        # run's (64,512 per destination: two runs would exhaust one).
        flow = f"10.{100 + run_index % 100}.0.1,{FAR},{PORT + 1 + run_index % 100}"
        frames = sources
    sink_ns, sink_dev = (lab.dut, "vl" if sdev == "vg" else "vw") if floor else (getattr(lab, sink), kdev)
    before, ticks = lab.drops(sink_ns, sink_dev), softirq_ticks()
    out = lab.send(getattr(lab, sender), sdev, flow, frames, sources)
    ticks = softirq_ticks() - ticks
    delivered = lab.drops(sink_ns, sink_dev) - before
    return out["seconds"] * 1e9 / max(delivered, 1), delivered / out["frames"], ticks * TICK_NS / max(delivered, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xdpctl", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--frames", type=int, default=300_000)
    p.add_argument("--json")
    args = p.parse_args()
    with Lab(f"xnat{os.getpid()}", args.bench) as lab, tempfile.TemporaryDirectory() as work:
        table = systems(args, lab, work)
        floor_pins = {dev: f"/sys/fs/bpf/{lab.dut}-floor-{dev}" for dev in ("vl", "vw")}
        runs = {(s, path[0]): [] for s, *_ in table for path in PATHS}
        floors = {path[0]: [] for path in PATHS}
        for n in range(args.runs):
            # The generator alone, per path (its frames dropped by the router's veth).
            for dev, pin in floor_pins.items():
                run(args.bench, "--netns", lab.dut, "--interface", dev, "--attach-drop", pin)
            try:
                for path in PATHS:
                    floors[path[0]].append(measure(lab, path, args.frames, n, floor=True))
            finally:
                for pin in floor_pins.values():
                    os.unlink(pin)
            for system, setup, teardown in table:
                setup()
                try:
                    # The flow's first packets open its connection (and its reply's).
                    lab.send(lab.gen, "vg", f"{LAN},{FAR},{PORT}", 1000)
                    for path in PATHS:
                        if system.startswith("kernel") and path[0] != "snat out":
                            continue  # without NAT nothing answers to the router's address
                        runs[(system, path[0])].append(measure(lab, path, args.frames, n))
                finally:
                    teardown()
            print(f"round {n + 1} of {args.runs} measured", file=sys.stderr)
    floor = {p: statistics.median([ns for ns, _, _ in rs]) for p, rs in floors.items()}
    floor_si = {p: statistics.median([si for _, _, si in rs]) for p, rs in floors.items()}
    rows = []
    for (system, path), rs in runs.items():
        if rs:
            router = [ns - floor[path] for ns, _, _ in rs]
            softirq = [si - floor_si[path] for _, _, si in rs]
            rows.append({"system": system, "path": path, "router_ns": round(statistics.median(router), 1),
                         "runs_router_ns": [round(r, 1) for r in router], "delivered": round(statistics.median([d for _, d, _ in rs]), 4),
                         "generator_ns": round(floor[path], 1), "softirq_ns": round(statistics.median(softirq), 1),
                         "runs_softirq_ns": [round(r, 1) for r in softirq]})
    nft = {r["path"]: r for r in rows if r["system"].startswith("nftables")}
    print(f"{'path':14} {'system':28} {'router ns/pkt':>13} {'÷ nftables':>11} {'softirq ns/pkt':>14} {'÷ nftables':>11} {'delivered':>9}")
    for r in rows:
        n = nft[r["path"]]
        print(f"{r['path']:14} {r['system']:28} {r['router_ns']:13.1f} {r['router_ns'] / n['router_ns']:10.2f}x "
              f"{r['softirq_ns']:14.1f} {r['softirq_ns'] / n['softirq_ns']:10.2f}x {r['delivered']:9.4f}")
    print(f"(medians of {args.runs} runs of {args.frames} frames ({NEW_FLOWS} new flows per run); router ns/pkt = ns per delivered "
          "frame minus the generator's alone; softirq ns/pkt = the generator CPU's softirq time (where the router's receive, "
          "forwarding and NAT run) per delivered frame, minus the generator-alone run's; ÷ nftables: the row's cost over nftables')")
    if args.json:
        merge_json(args.json, "nat", {"runs": args.runs, "frames": args.frames, "rows": rows})


if __name__ == "__main__":
    main()
