#!/usr/bin/env python3
"""NAT on a router namespace: the router's CPU time per packet, per system, in one run.

    gen: vg -> vr ~relay~> vs -- L [dut: router, 10.204.1.1 | 10.204.2.1] W -- vx <~relay~ vi <- vh :far
         (LAN, 10.204.1.2)                                                        (WAN, 10.204.2.2)

A generator (`xdpctl-bench --send`, CPU 0) sends UDP frames at one end; the relay of
bench_veth.py redirects them with XDP into that end's veth to the router, so the router
receives XDP frames, as from a NIC. The router's two veths run their NAPI threaded,
pinned to CPU 1: everything the router does to a packet (XDP, the stack's forwarding,
netfilter, tc egress, the transmit into the next veth) runs in those threads. The ends
(vs, vx) drop and count what the router delivers with XDP_DROP, in the softirq the
router's transmit raises, so in the router's threads too: the same small cost for every
system (a threaded end on CPU 0 would starve beside the generator's pacing, which spins).

A path's figure is the router threads' CPU time (/proc/PID/schedstat) over the packets
delivered, with the generator paced to --rate. Waking the router's threads costs every
system alike, so the floor (the router's veth dropping every frame at once with XDP_DROP,
measured per path in the same round) is also taken out: "net" is what the router's job
itself costs. Each system does the same job on the same topology:

  snat out        LAN -> WAN, one established flow, source rewritten to 10.204.2.1
  snat reply      WAN -> LAN, that flow's replies, destination rewritten back
  dnat in         WAN -> 10.204.2.1:8080, sent on to 10.204.1.2:8080
  new flows out   LAN -> WAN, 60,000 sources in turn, each frame a new flow (a fresh
                  source range and destination port every run: masquerade has 64,512
                  ports per destination, and the previous run's flows live 30 s), each
                  source from a port of its own, which both systems keep (RFC 4787
                  port preservation; real clients' ephemeral ports)
  new flows out, one port   the same, every source from port 40000: each new flow but
                  the first needs a port search, over a range the run fills to 93%

Systems: the kernel forwarding with no NAT (the floor of the stack path), nftables
(masquerade and dnat with conntrack), and xdpctl; the first two with xdpctl's bare XDP
program on the router's veths, so all three pay the same XDP entry. Medians of --runs
runs, round robin; ratios are the system's figure over nftables' (below 1: cheaper per
packet than nftables). Results are merged into --json under "nat".

Usage: bench_nat.py --xdpctl BIN --bench BIN [--runs 5] [--seconds 2] [--rate 200000] [--json FILE]
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
    """gen -- dut -- far, with a relay at each end."""

    def __init__(self, tag, bench):
        self.gen, self.dut, self.far, self.bench = f"{tag}g", f"{tag}d", f"{tag}f", bench
        self.namespaces = [self.gen, self.dut, self.far]
        # The router's veths name its NAPI threads: unique on the host.
        suffix = os.getpid() % 100000
        self.lan, self.wan = f"L{suffix}", f"W{suffix}"
        self.pins = [f"/sys/fs/bpf/{tag}-{what}" for what in ("relay-gen", "relay-far", "sink-gen", "sink-far")]

    def build(self):
        for ns in self.namespaces:
            run("ip", "netns", "add", ns)
        for ns, sender, relay, end, router in ((self.gen, "vg", "vr", "vs", self.lan), (self.far, "vh", "vi", "vx", self.wan)):
            run("ip", "-n", ns, "link", "add", sender, "type", "veth", "peer", "name", relay)
            run("ip", "-n", ns, "link", "add", end, "type", "veth", "peer", "name", router, "netns", self.dut)
            for dev in (sender, relay, end):
                run("ip", "-n", ns, "link", "set", dev, "up")
        for dev, addr in ((self.lan, ROUTER_LAN), (self.wan, ROUTER_WAN)):
            run("ip", "-n", self.dut, "addr", "add", f"{addr}/24", "dev", dev)
            # The generator's frames go to this MAC: the router's ends carry it.
            run("ip", "-n", self.dut, "link", "set", dev, "address", "02:00:00:00:00:01")
            run("ip", "-n", self.dut, "link", "set", dev, "up")
        mac = {ns: json.loads(run("ip", "-j", "-n", ns, "link", "show", dev))[0]["address"] for ns, dev in ((self.gen, "vs"), (self.far, "vx"))}
        self.dut_sh(f"ip neigh add {LAN} lladdr {mac[self.gen]} dev {self.lan} nud permanent && "
                    f"ip neigh add {FAR} lladdr {mac[self.far]} dev {self.wan} nud permanent && "
                    f"ip route add 10.0.0.0/8 dev {self.lan} && "  # the new-flow sources, so the reverse-path check passes
                    f"sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.{self.lan}.rp_filter=0")
        # No GRO: it would merge the flow's frames before the stack (and count them as
        # one at the end). Every system runs an XDP program on both router veths
        # (xdpctl's, bare where it has no rules), which gives the veth its NAPI.
        self.dut_sh(f"ethtool -K {self.lan} gro off && ethtool -K {self.wan} gro off")
        relay_gen, relay_far, sink_gen, sink_far = self.pins
        run(self.bench, "--netns", self.gen, "--interface", "vr", "--attach-drop", relay_gen, "--relay-to", "vs")
        run(self.bench, "--netns", self.far, "--interface", "vi", "--attach-drop", relay_far, "--relay-to", "vx")
        for pin, ns, dev in ((sink_gen, self.gen, "vs"), (sink_far, self.far, "vx")):
            run(self.bench, "--netns", ns, "--interface", dev, "--attach-drop", pin)

    def threads(self, devs):
        return [pid for dev in devs for pid in subprocess.run(["pgrep", f"^napi/{dev}-"], capture_output=True, text=True).stdout.split()]

    def pin_napi(self):
        """Makes the router's NAPI threaded and pins its threads to CPU 1 (attaching XDP
        recreates them: call after every setup)."""
        for dev in (self.lan, self.wan):
            run("ip", "netns", "exec", self.dut, "sh", "-c", f"echo 1 > /sys/class/net/{dev}/threaded")
        for pid in self.threads([self.lan, self.wan]):
            subprocess.run(["taskset", "-pc", "1", pid], capture_output=True)

    def router_ns(self):
        """CPU time of the router's NAPI threads so far, in ns."""
        total = 0
        for pid in self.threads([self.lan, self.wan]):
            try:
                total += int(open(f"/proc/{pid}/schedstat").read().split()[0])
            except OSError:
                pass
        return total

    def drops(self, ns, dev):
        return xdp_drops(run("ip", "netns", "exec", ns, "ethtool", "-S", dev))

    def send(self, ns, dev, flow, seconds, rate, sources=1, frames=1 << 40, own_ports=False):
        return json.loads(run("taskset", "-c", "0", self.bench, "--netns", ns, "--interface", dev, "--send", str(frames),
                              "--seconds", str(seconds), "--rate", str(rate), "--flow", flow, "--sources", str(sources),
                              *(["--source-ports"] if own_ports else [])))


# The paths: (name, sender namespace attr, sender device, flow, sink namespace attr, sink
# device, sources, each source from its own port).
PATHS = [
    ("snat out", "gen", "vg", f"{LAN},{FAR},{PORT}", "far", "vx", 1, False),
    ("snat reply", "far", "vh", f"{FAR},{ROUTER_WAN},{PORT}", "gen", "vs", 1, False),
    ("dnat in", "far", "vh", f"{FAR},{ROUTER_WAN},{DNAT_PORT}", "gen", "vs", 1, False),
    ("new flows out", "gen", "vg", None, "far", "vx", NEW_FLOWS, True),
    ("new flows out, one port", "gen", "vg", None, "far", "vx", NEW_FLOWS, False),
]


def systems(args, lab, work):
    env = dict(os.environ, XDPCTL_PIN_ROOT=f"/sys/fs/bpf/xdpctl-{lab.dut}")
    config, bare = os.path.join(work, "nat.json"), os.path.join(work, "bare.json")
    # The LAN side takes NAT's fast path: the generator's frames carry whole checksums (a
    # veth peer sending with TX checksum offload would not, hence "auto" is off on veths).
    json.dump({"version": 1, "interfaces": [{"name": lab.lan, "nat_fast_path": "on"}, {"name": lab.wan, "nat": {
        "snat": [{"name": "masq", "src": ["10.0.0.0/8"], "port_range": "1024-65535"}],
        "dnat": [{"name": "web", "proto": "udp", "dst": ROUTER_WAN, "dst_port": DNAT_PORT, "to_address": LAN, "to_port": DNAT_PORT}]}}]},
        open(config, "w"))
    json.dump({"version": 1, "interfaces": [{"name": lab.lan}, {"name": lab.wan}]}, open(bare, "w"))
    nft = (f"table ip benchnat {{\n"
           f" chain pre {{ type nat hook prerouting priority -100; iifname \"{lab.wan}\" udp dport {DNAT_PORT} dnat to {LAN}:{DNAT_PORT}; }}\n"
           f" chain post {{ type nat hook postrouting priority 100; oifname \"{lab.wan}\" masquerade; }}\n}}\n")
    apply = lambda f: run(args.xdpctl, "apply", "-f", f, "--netns", lab.dut, env=env)
    down = lambda: run(args.xdpctl, "down", env=env)
    return [
        ("kernel forwarding, no NAT", lambda: apply(bare), down),
        ("nftables masquerade + dnat", lambda: (apply(bare), lab.dut_sh("nft -f -", input=nft)),
         lambda: (lab.dut_sh("nft delete table ip benchnat"), down())),
        ("xdpctl nat", lambda: apply(config), down),
    ]


def measure(args, lab, path, run_index, floor=False):
    """Sends a path's frames; returns (router ns per delivered frame, delivered / sent).
    `floor`: the router's receiving veth drops them at once (its count is the delivery)."""
    name, sender, sdev, flow, sink, kdev, sources, own_ports = path
    seconds, frames = args.seconds, 1 << 40
    if flow is None:  # every frame a new flow: one pass over the sources, paced alike
        fresh = run_index % 50 + (100 if own_ports else 0)
        flow = f"10.{100 + fresh}.0.1,{FAR},{PORT + 1 + fresh}"
        seconds, frames = 30, sources
    sink_ns, sink_dev = (lab.dut, lab.lan if sdev == "vg" else lab.wan) if floor else (getattr(lab, sink), kdev)
    before, cpu = lab.drops(sink_ns, sink_dev), lab.router_ns()
    out = lab.send(getattr(lab, sender), sdev, flow, seconds, args.rate, sources, frames, own_ports)
    busy, delivered = lab.router_ns() - cpu, lab.drops(sink_ns, sink_dev) - before
    return busy / max(delivered, 1), delivered / max(out["frames"], 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xdpctl", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each established-flow send")
    p.add_argument("--rate", type=int, default=200_000, help="offered packets per second")
    p.add_argument("--json")
    args = p.parse_args()
    with Lab(f"xnat{os.getpid()}", args.bench) as lab, tempfile.TemporaryDirectory() as work:
        table = systems(args, lab, work)
        floor_pins = {dev: f"/sys/fs/bpf/{lab.dut}-floor-{dev}" for dev in (lab.lan, lab.wan)}
        runs = {(s, path[0]): [] for s, *_ in table for path in PATHS}
        floors = {path[0]: [] for path in PATHS}
        for n in range(args.runs):
            # The floor, per path: the router's veth drops the frames at once.
            for dev, pin in floor_pins.items():
                run(args.bench, "--netns", lab.dut, "--interface", dev, "--attach-drop", pin)
            try:
                lab.pin_napi()
                for path in PATHS:
                    floors[path[0]].append(measure(args, lab, path, n, floor=True))
            finally:
                for pin in floor_pins.values():
                    os.unlink(pin)
            for system, setup, teardown in table:
                setup()
                try:
                    lab.pin_napi()
                    # The flow's first packets open its connection (and its reply's).
                    lab.send(lab.gen, "vg", f"{LAN},{FAR},{PORT}", 1, 10_000, frames=1000)
                    for path in PATHS:
                        if system.startswith("kernel") and path[0] != "snat out":
                            continue  # without NAT nothing answers to the router's address
                        runs[(system, path[0])].append(measure(args, lab, path, n))
                finally:
                    teardown()
            print(f"round {n + 1} of {args.runs} measured", file=sys.stderr)
    med = statistics.median
    floor = {p: med(ns for ns, _ in rs) for p, rs in floors.items()}
    rows = [{"system": system, "path": path, "router_ns": round(med(ns for ns, _ in rs), 1),
             "net_ns": round(med(ns for ns, _ in rs) - floor[path], 1), "floor_ns": round(floor[path], 1),
             "runs_router_ns": [round(ns, 1) for ns, _ in rs], "delivered": round(med(d for _, d in rs), 4)}
            for (system, path), rs in runs.items() if rs]
    nft = {r["path"]: r for r in rows if r["system"].startswith("nftables")}
    print(f"{'path':24} {'system':28} {'router ns/pkt':>13} {'÷ nftables':>11} {'net ns/pkt':>11} {'÷ nftables':>11} {'delivered':>9}")
    for r in rows:
        n = nft[r["path"]]
        print(f"{r['path']:24} {r['system']:28} {r['router_ns']:13.1f} {r['router_ns'] / n['router_ns']:10.2f}x "
              f"{r['net_ns']:11.1f} {r['net_ns'] / n['net_ns']:10.2f}x {r['delivered']:9.4f}")
    print(f"(medians of {args.runs} runs at {args.rate} packets/s offered ({NEW_FLOWS} new flows per run); router ns/pkt = the "
          "router's NAPI threads' CPU time per delivered frame; net = that minus the floor's (the router's veth dropping every "
          f"frame at once: {', '.join(f'{p} {v:.0f}' for p, v in floor.items())}); ÷ nftables: the row's figure over nftables')")
    if args.json:
        merge_json(args.json, "nat", {"runs": args.runs, "rate_pps": args.rate, "seconds": args.seconds, "rows": rows})


if __name__ == "__main__":
    main()
