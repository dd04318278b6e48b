/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdpctl_abi.h — the one ABI shared by the BPF programs (clang -target bpf) and the
 * Swift control plane (imported as the CXDPCtlABI module).
 *
 * Rules for everything in this file:
 *   - fixed-width fields only, explicit padding, no bitfields, unions or __packed;
 *   - every struct has a _Static_assert on its size: Swift copies C structs field by
 *     field and leaves implicit holes undefined, which makes hash keys miss at random;
 *   - a layout change bumps DP_ABI_VERSION and the affected map's _vN name suffix
 *     (libbpf's pinned-map reuse only compares sizes).
 */
#ifndef XDPCTL_ABI_H
#define XDPCTL_ABI_H

#include <linux/types.h>

#define DP_ABI_VERSION 6

/* ---- limits (overridable at build time) -------------------------------------- */

/* Rule counter slots per interface; slot 0 counts packets that fell to the default. */
#ifndef DP_MAX_RULES
#define DP_MAX_RULES 131072
#endif
/* Depth of the firewall decision tree (cut nodes on one root-to-leaf path). */
#ifndef DP_FW_MAX_DEPTH
#define DP_FW_MAX_DEPTH 24
#endif
/* Rules scanned in one leaf of the decision tree. */
#ifndef DP_FW_LEAF_MAX
#define DP_FW_LEAF_MAX 16
#endif
/* Decision trees per rule set. Rules are split by which address fields are wide (so a
 * tree only cuts fields its rules are narrow in); rules that would still be copied into
 * too many leaves move to a later tree. A packet takes the best match over all trees. */
#ifndef DP_FW_MAX_TREES
#define DP_FW_MAX_TREES 8
#endif
/* The last two trees are the patch trees: they hold the rules applies added (or
 * uncovered, by deleting a rule that hid them) since the last full compile, the second
 * the rules the first could not separate. A full compile builds at most
 * DP_FW_PATCH_TREE trees. */
#define DP_FW_PATCH_TREE (DP_FW_MAX_TREES - 2)
/* Smallest firewall table. Every table of an interface has the same capacity (nodes),
 * fixed when its program is loaded (DP_FW_RODATA), so the verifier can bound a node's
 * offset in the table; a config that outgrows it gets a bigger program instance,
 * swapped in atomically. */
#ifndef DP_FW_MIN_NODES
#define DP_FW_MIN_NODES 4096
#endif
/* Largest firewall table: the verifier bounds an offset into a map value by 2^29 bytes. */
#define DP_FW_MAX_NODES (1 << 22)
/* Widest cut: a cut node has at most 2^DP_FW_MAX_CUT_BITS children. */
#define DP_FW_MAX_CUT_BITS 16
/* Rate-limit match entries per interface (a limit takes one entry per combination of
 * its src, dst and port lists), and counter/bucket slots for limits. */
#ifndef DP_RL_MAX_ENTRIES
#define DP_RL_MAX_ENTRIES 64
#endif
#ifndef DP_RL_MAX_LIMITS
#define DP_RL_MAX_LIMITS 1024
#endif
/* Per-source buckets per interface (all limits together); least recently used first out. */
#ifndef DP_RL_MAX_SOURCES
#define DP_RL_MAX_SOURCES 65536
#endif
/* Load balancers and backends per interface (slots for counters and the backend table). */
#ifndef DP_LB_MAX_VIPS
#define DP_LB_MAX_VIPS 256
#endif
#ifndef DP_LB_MAX_BACKENDS
#define DP_LB_MAX_BACKENDS 4096
#endif
/* Maglev entries per generation, all VIPs of an interface together. */
#ifndef DP_LB_MAX_RING
#define DP_LB_MAX_RING (1U << 24)
#endif
/* Next hops remembered per interface, and for how long: kernel ticks (jiffies), 100 ms at
 * Debian's HZ of 250 (25 to 250 ms at other HZ). Ticks are the cheapest clock to read. */
#ifndef DP_FWD_CACHE_ENTRIES
#define DP_FWD_CACHE_ENTRIES 4096
#endif
#ifndef DP_FWD_CACHE_TICKS
#define DP_FWD_CACHE_TICKS 25
#endif
/* NAT: SNAT match entries per interface (one per rule and src prefix), DNAT rules per
 * interface, and counter slots for both. */
#ifndef DP_NAT_MAX_SNAT
#define DP_NAT_MAX_SNAT 64
#endif
#ifndef DP_NAT_MAX_DNAT
#define DP_NAT_MAX_DNAT 1024
#endif
#ifndef DP_NAT_MAX_RULES
#define DP_NAT_MAX_RULES 1024
#endif
/* Ports tried for a new SNAT mapping before the packet is dropped as nat_no_port. */
#define DP_NAT_PORT_TRIES 32
/* Connection-table entries, one table for all interfaces (two entries per connection):
 * established (answered; for the load balancer, the client's second packet seen), and
 * new. */
#ifndef DP_CT_MAX
#define DP_CT_MAX 262144
#endif
#ifndef DP_CT_NEW_MAX
#define DP_CT_NEW_MAX 65536
#endif
/* Datagrams whose later fragments NAT translates as their first one was, per interface. */
#ifndef DP_FW_FRAG_MAX
#define DP_FW_FRAG_MAX 8192
#endif
#ifndef DP_NAT_FRAG_MAX
#define DP_NAT_FRAG_MAX 4096
#endif
/* IPv6 extension headers walked before giving up on finding the L4 header. */
#define DP_IPV6_EXT_MAX 8
/* VLAN tags (802.1Q / 802.1ad) skipped in front of the network header. */
#define DP_VLAN_MAX 2

/* ---- map names (<= 15 characters; the BPF variables carry exactly these names) --- */

#define DP_MAP_GEN        "dp_gen"
#define DP_MAP_GEN_WAIT   "dp_gen_wait"
#define DP_MAP_STATS      "dp_stats_v4"    /* ABI 3's "dp_stats" counted one reason fewer */
#define DP_MAP_TC_STATS   "dp_tc_stats"
#define DP_MAP_RULE_STATS "dp_rule_stats"
#define DP_MAP_FW         "dp_fw_v3"
#define DP_MAP_RL         "dp_rl"
#define DP_MAP_RL_BUCKETS "dp_rl_buckets"
#define DP_MAP_RL_SOURCES "dp_rl_sources"
#define DP_MAP_RL_STATS   "dp_rl_stats"
#define DP_MAP_LB_VIPS    "dp_lb_vips"
#define DP_MAP_LB_RING    "dp_lb_ring"
#define DP_MAP_LB_BACKENDS "dp_lb_backends"
#define DP_MAP_LB_VSTATS  "dp_lb_vstats"
#define DP_MAP_LB_BSTATS  "dp_lb_bstats"
#define DP_MAP_LB_VFILTER "dp_lb_vfilter"  /* until ABI 5: dp_lb_vports, by port alone */
#define DP_MAP_LB_RPORTS  "dp_lb_rports"   /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_LB_HEALTH  "dp_lb_health"   /* made by the control plane; no program reads it */
#define DP_MAP_CAPTURE    "dp_capture"       /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_CAPTURE_STATS "dp_capture_stats" /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_CAPTURE_RING "dp_capture_ring" /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_CAPTURE_ON ".data.capture"   /* the capture flag's section; pinned at the pin root as DP_PIN_CAPTURE_ON */
#define DP_PIN_CAPTURE_ON "dp_capture_on"
#define DP_MAP_CT         "dp_ct"          /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_CT_NEW     "dp_ct_new"      /* shared by all interfaces: pinned at the pin root */
#define DP_MAP_NAT_SNAT   "dp_nat_snat"
#define DP_MAP_NAT_DNAT   "dp_nat_dnat"
#define DP_MAP_NAT_STATS  "dp_nat_stats"
#define DP_MAP_NAT_FRAG   "dp_nat_frag"
#define DP_MAP_FW_FRAG    "dp_fw_frag"
#define DP_PROG_XDP       "xdp_ingress"
#define DP_PROG_TC        "tc_egress"

/* ---- verdicts and reasons ------------------------------------------------------ */

/* Numbered as enum xdp_action, so a verdict is its own XDP return code. */
enum dp_verdict {
	DP_VERDICT_ABORTED = 0,
	DP_VERDICT_DROP = 1,
	DP_VERDICT_PASS = 2,
	DP_VERDICT_TX = 3,
	DP_VERDICT_REDIRECT = 4,
	DP_VERDICT__MAX
};

/* Why a packet was dropped (DP_REASON_NONE for every other verdict). */
enum dp_reason {
	DP_REASON_NONE = 0,
	DP_REASON_FIREWALL = 1,
	DP_REASON_RATE_LIMIT = 2,
	DP_REASON_MALFORMED = 3,
	DP_REASON_NO_BACKEND = 4,
	DP_REASON_NAT_NO_PORT = 5,   /* a new SNAT flow found no free port (tc egress) */
	DP_REASON__MAX
};

/* ---- generations: one root names every table an interface's packets read ----------
 *
 * The tables compiled from the config (firewall, rate limits, load-balancer VIPs and
 * Maglev rings, NAT rules) are replaced, never edited, by an apply. Each kind has an
 * ARRAY_OF_MAPS[DP_GEN_SLOTS] per interface (dp_fw_v3, dp_rl, dp_lb_vips, dp_lb_ring).
 * dp_gen, the interface's root, is an ARRAY[1] of one __u32 word, BPF_F_MMAPABLE: the
 * slot of every table map that holds the running generation's tables (DP_GEN_SLOT, bit
 * 0) and which tables it has (enum dp_gen_table, the bits above). A packet reads the
 * word once, at its start, and then reads only that slot of the tables it names.
 *
 * An apply fills the slot the running generation does not use (new tables, or for a
 * firewall patch the patched table beside the running generation's others), then
 * writes the word with one atomic store through the map's memory: every packet sees
 * the old word or the new one. It then updates dp_gen_wait, an ARRAY_OF_MAPS[1] that no
 * program reads: the kernel returns from an update of a map of maps only after an RCU
 * grace period, so once that returns no program run holds the old word. The old slot
 * keeps its tables, which no packet reads, until the next apply stages over them; its
 * firewall table is the spare that apply fills. A word of 0 (no generation yet, or
 * one without tables: an interface that has only a name in the config) makes every
 * packet pass; replies are still translated.
 *
 * Stateful maps (counters, buckets, connection tables) are not part of a generation:
 * they live across applies, keyed by slots that apply keeps per name.
 */
#define DP_GEN_SLOTS 2
#define DP_GEN_SLOT 1U /* the word's slot bit */

enum dp_gen_table {
	DP_GEN_FIREWALL = 1 << 1,    /* dp_fw_v3[slot] */
	DP_GEN_RATE_LIMITS = 1 << 2, /* dp_rl[slot] */
	DP_GEN_BALANCERS = 1 << 3,   /* dp_lb_vips[slot] and dp_lb_ring[slot] */
	DP_GEN_NAT = 1 << 4,         /* dp_nat_snat[slot] and dp_nat_dnat[slot] */
	DP_GEN_NAT_PEERS = 1 << 5,   /* no table: take NAT's fast path (the file has NAT rules) */
};

/* ---- dp_stats_v4 (XDP) and dp_tc_stats (tc egress): PERCPU_ARRAY[1] per interface ----
 * The tc program counts its verdicts apart: DP_VERDICT_PASS for TC_ACT_OK, DROP for
 * TC_ACT_SHOT; rx_ counts the packets it saw leave. */

struct dp_if_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 verdict[DP_VERDICT__MAX];   /* packets by verdict */
	__u64 drop_reason[DP_REASON__MAX]; /* dropped packets by reason */
};
_Static_assert(sizeof(struct dp_if_stats) == 8 * (2 + DP_VERDICT__MAX + DP_REASON__MAX),
	       "dp_if_stats changed: bump DP_ABI_VERSION");

/* ---- dp_rule_stats: PERCPU_ARRAY[DP_MAX_RULES], indexed by counter slot --------- */

struct dp_rule_stats {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct dp_rule_stats) == 16, "dp_rule_stats changed: bump DP_ABI_VERSION");

/* ---- firewall: a decision tree over the packet key -------------------------------
 *
 * The packet key is DP_FW_NFIELDS 32-bit words in host byte order:
 *   src address words 0..3, dst address words 0..3 (IPv4 uses word 0 only, others 0),
 *   source port, destination port (DP_FW_NO_PORT when the packet has no L4 ports: not
 *   TCP/UDP, or a non-first fragment), IP protocol, address family (4 or 6).
 *
 * dp_fw_v3 is an ARRAY_OF_MAPS[DP_GEN_SLOTS] (see generations above) whose inner maps
 * each hold the whole compiled rule set of one generation: an ARRAY with a single value,
 * dp_fw_node[capacity] (node i at byte i * sizeof(struct dp_fw_node)), so a node is an
 * offset from the table rather than a lookup of its own. (ABI version 2 had one slot,
 * whose header named the other tables' slot, as dp_fw; version 1 kept one node per
 * array entry.)
 *
 * Node 0 is the HEADER: it is also the rule that applies when no tree matches (its
 * slot, action, and priority ~0), its count is the number of trees (0 .. count-1 are in
 * use), and for each tree t, lo[t] is a lower bound of the priorities in the tree (~0
 * when the tree is empty) and hi[t] the index of its root. A tree whose best
 * priority cannot beat the match so far is skipped without a lookup. Other nodes are:
 *   CUT:  a key word whose guarded bits differ from guard_value goes to child
 *         base + (1 << bits); any other to base + ((key[field] >> shift) & ((1 << bits) - 1))
 *   LEAF: the rules to try are nodes base .. base+count-1, in priority order; priority
 *         is at most theirs (the first rule's; 0 in tables from before). Its guard:
 *         a key with key[field] - guard_value > ~guard_mask matches none of them (every
 *         rule's range in that word lies in guard_value .. guard_value + ~guard_mask;
 *         guard_mask 0, as tables built before the guard have it, guards nothing)
 *   RULE: matches when lo[i] <= key[i] <= hi[i] for every field i; of all matches over
 *         all trees the one with the lowest priority wins (first match). A rule an apply
 *         deleted without recompiling keeps its place with lo = hi = 0 in the family
 *         word, which no packet has: it never matches.
 *
 * Behind the trees lies what apply needs to patch a running table instead of compiling
 * every rule again (packets never reach it). Header word lo[DP_FW_DIR] is the index of
 * the first BOX node, hi[DP_FW_DIR] the number of boxes, lo[DP_FW_DIR + 1] the number of
 * DEAD nodes after them; the patch tree's nodes follow.
 *   BOX:  one RULE node per box of the rule list in priority order (priority =
 *         position; the last is the default); count 1 when the last full compile put
 *         the box in its trees, 0 when only the patch tree holds it. For a box the
 *         trees hold, field is 1 + the tree that holds it in full (the last it went
 *         to), shift 1 + the first tree it went to (0: not recorded).
 *   DEAD: a box deleted since the full compile whose copies stay in the trees;
 *         priority: the position of the box after it. Boxes behind it that the compile
 *         may have left out of leaves it covered go to the patch tree.
 */
#define DP_FW_DIR 10

/* The ELF section of the BPF object holding one __u32: the capacity (nodes) of every
 * firewall table the program instance will be given. The loader sets it before load;
 * the verifier takes it as a constant, the bound of every node offset. */
#define DP_FW_RODATA ".rodata.fw"

enum dp_fw_field {
	DP_FW_F_SRC0 = 0,
	DP_FW_F_DST0 = 4,
	DP_FW_F_SPORT = 8,
	DP_FW_F_DPORT = 9,
	DP_FW_F_PROTO = 10,
	DP_FW_F_FAMILY = 11,
	DP_FW_NFIELDS = 12
};

#define DP_FW_NO_PORT 0x10000U

enum dp_fw_node_kind {
	DP_FW_NODE_EMPTY = 0,
	DP_FW_NODE_CUT = 1,
	DP_FW_NODE_LEAF = 2,
	DP_FW_NODE_RULE = 3,
	DP_FW_NODE_HEADER = 4
};

enum dp_fw_action {
	DP_FW_ALLOW = 1,
	DP_FW_DROP = 2
};

struct dp_fw_node {
	__u8 kind;   /* enum dp_fw_node_kind */
	__u8 field;  /* CUT, LEAF: enum dp_fw_field */
	__u8 shift;  /* CUT */
	__u8 bits;   /* CUT: 0 .. DP_FW_MAX_CUT_BITS */
	__u32 base;  /* CUT: first child; LEAF: first rule */
	__u32 count; /* LEAF: rules in the leaf, 1 .. DP_FW_LEAF_MAX; HEADER: trees */
	__u32 slot;  /* RULE: counter slot in dp_rule_stats */
	__u32 priority; /* RULE: position in the expanded rule list, lower wins; LEAF: its first rule's */
	__u32 guard_mask;  /* CUT: bits of key[field] that must equal guard_value; LEAF: see above */
	__u32 guard_value;
	__u8 action; /* RULE: enum dp_fw_action */
	__u8 pad[3];
	__u32 lo[DP_FW_NFIELDS]; /* RULE: inclusive bounds per key word */
	__u32 hi[DP_FW_NFIELDS];
};
_Static_assert(sizeof(struct dp_fw_node) == 32 + 8 * DP_FW_NFIELDS,
	       "dp_fw_node changed: bump DP_ABI_VERSION and rename dp_fw_v3");
_Static_assert(DP_FW_MAX_TREES <= DP_FW_DIR, "the header keeps one lo/hi pair per tree, then the directory");

/* ---- rate limits: token buckets over traffic the firewall allowed -----------------
 *
 * dp_rl is an ARRAY_OF_MAPS[DP_GEN_SLOTS] whose inner maps, ARRAYs of
 * DP_RL_MAX_ENTRIES + 1 dp_rl_entry, hold an interface's limits, one generation each
 * (see generations above), so the firewall and the limits (and any rate change) switch
 * for every packet at once. Entry 0 is the header (count:
 * entries in use); entries 1..count are match boxes in file order, each carrying its
 * limit's parameters. A packet is charged to the first entry it matches (first match,
 * as for firewall rules); a packet matching none is not limited.
 *
 * Buckets are GCRA (virtual scheduling), the token bucket stated in time: a bucket
 * holds a theoretical arrival time TAT per dimension (packets, bytes) in 2^-4 ns of
 * bpf_ktime_get_ns (2^64 of them last 36 years). A packet of cost c arriving at `now`
 * passes when max(TAT, now) + c <= now + window, and then TAT = max(TAT, now) + c,
 * stored with a compare-and-swap, so CPUs sharing a bucket never lose a charge. A
 * packet over either dimension is dropped and charges neither (two CPUs racing on a
 * limit with both rates can, rarely, charge the packet dimension for a packet the byte
 * dimension then drops). window = burst * cost: a full bucket passes `burst` packets
 * (bytes) at once, and the long-run rate is 1 / cost. Packet costs are in 2^-4 ns;
 * byte costs in 2^-16 ns per byte, a packet's being (len * byte_cost) >> 12, so both
 * lose less than 1/16 ns per packet to rounding.
 *
 * per RULE: one bucket per limit slot in dp_rl_buckets (ARRAY). per SOURCE: one bucket
 * per (limit slot, source address masked to the limit's prefix) in dp_rl_sources, an LRU
 * hash of DP_RL_MAX_SOURCES: when it is full, the least recently seen source loses its
 * bucket and starts again full.
 */
enum dp_rl_scope {
	DP_RL_PER_RULE = 1,
	DP_RL_PER_SOURCE = 2
};

/* TATs, packet costs and windows count 2^-DP_RL_TIME_BITS ns; byte costs count
 * 2^-(DP_RL_TIME_BITS + DP_RL_BYTE_BITS) ns per byte. */
#define DP_RL_TIME_BITS 4
#define DP_RL_BYTE_BITS 12
/* Compare-and-swap attempts on a contended bucket before the packet is dropped. */
#define DP_RL_CAS_TRIES 8

struct dp_rl_entry {
	__u32 count;     /* header only: entries 1..count are in use */
	__u32 slot;      /* the limit's bucket and counter slot, 0 .. DP_RL_MAX_LIMITS-1 */
	__u8 scope;      /* enum dp_rl_scope */
	__u8 prefix_v4;  /* per SOURCE: source bits kept for IPv4 (1..32) */
	__u8 prefix_v6;  /* per SOURCE: source bits kept for IPv6 (1..128) */
	__u8 tcp_flags_mask; /* the packet's TCP flags & mask must equal tcp_flags_value */
	__u8 tcp_flags_value;
	__u8 pad[7];
	__u64 pkt_cost;   /* 2^-4 ns per packet; 0: no packet rate */
	__u64 pkt_window; /* 2^-4 ns: burst_packets * pkt_cost */
	__u64 byte_cost;  /* 2^-16 ns per byte; 0: no byte rate */
	__u64 byte_window; /* 2^-4 ns: (burst_bytes * byte_cost) >> 12 */
	__u32 lo[DP_FW_NFIELDS]; /* match box, as a firewall RULE node's */
	__u32 hi[DP_FW_NFIELDS];
};
_Static_assert(sizeof(struct dp_rl_entry) == 56 + 8 * DP_FW_NFIELDS,
	       "dp_rl_entry changed: bump DP_ABI_VERSION and rename dp_rl");

/* A bucket: the TAT of each dimension, in 2^-4 ns. dp_rl_buckets is an
 * ARRAY[DP_RL_MAX_LIMITS] of them (per rule); dp_rl_sources maps source keys to them. */
struct dp_rl_bucket {
	__u64 pkts;
	__u64 bytes;
};
_Static_assert(sizeof(struct dp_rl_bucket) == 16, "dp_rl_bucket changed: bump DP_ABI_VERSION");

/* dp_rl_sources: LRU_HASH[DP_RL_MAX_SOURCES] of per-source buckets. */
struct dp_rl_source_key {
	__u32 slot;
	__u32 family;
	__u32 addr[4]; /* host-order words, masked to the limit's prefix */
};
_Static_assert(sizeof(struct dp_rl_source_key) == 24, "dp_rl_source_key changed: bump DP_ABI_VERSION");

/* dp_rl_stats: PERCPU_ARRAY[DP_RL_MAX_LIMITS], indexed by limit slot. */
struct dp_rl_stats {
	__u64 passed;
	__u64 dropped;
};
_Static_assert(sizeof(struct dp_rl_stats) == 16, "dp_rl_stats changed: bump DP_ABI_VERSION");

/* ---- load balancers: VIPs over Maglev tables, a connection table, NAT ------------
 *
 * Per interface, per generation (see generations above): dp_lb_vips[slot] is a HASH
 * from the VIP endpoint to its dp_lb_vip, and dp_lb_ring[slot] an ARRAY of backend
 * slots holding every VIP's Maglev table one after the other (ring_start, ring_size).
 * A flow goes to ring[ring_start + hash % ring_size].
 *
 * dp_lb_backends is an ARRAY[DP_LB_MAX_BACKENDS], written in place: apply fills a
 * backend's slot before the first generation that uses it, and sets its epoch to 0 when
 * the backend is removed. A slot's epoch is the generation that gave it to its backend.
 *
 * Connections live in the connection table (see "NAT and the connection table"), two
 * entries each of kind DP_CT_LB: the client's (client to VIP; it leaves for the backend)
 * and the backend's replies' (backend to client; they leave from the VIP). Both are
 * served at XDP ingress: the client's entry on the interface that balanced it, the
 * reply's on whichever interface the reply arrives at. A connection starts in dp_ct_new
 * and moves to dp_ct with the client's second packet (for TCP, one without SYN), so a
 * flood of spoofed first packets only churns dp_ct_new. Its entry names the backend by
 * slot and epoch: one whose epoch is no longer its slot's (the backend was removed) is
 * balanced afresh. A TCP SYN for a tuple of an established connection opens a new one.
 * Only replies of connections the balancer made are translated, so one backend
 * endpoint may serve several VIPs, and traffic to a backend straight through the LB
 * host passes untouched.
 *
 * Filters spare most packets the connection lookup. dp_lb_vfilter (per interface) has
 * bit dp_lb_vip_bit(address, port) set for each VIP of the interface: a packet to
 * another address on a VIP's port finds its bit clear but for one chance in 65,536 per
 * VIP. dp_lb_rports (shared) has bit p set when a backend answers from source port p.
 * Each is an ARRAY[DP_LB_FILTER_WORDS] of __u32, bit b being bit b % 32 of word b / 32. A
 * clear bit skips the lookup, a set one only says "look". Apply sets the bits of both
 * the old and the new generation before the swap and clears the old ones' after it.
 */
#define DP_LB_FILTER_WORDS (65536 / 32)

/* The dp_lb_vfilter bit of destination address a0..a3 (host-order words, as the packet
 * key's) and port: a multiplicative hash, the same in the program and the control plane. */
static inline __u32 dp_lb_vip_bit(__u32 a0, __u32 a1, __u32 a2, __u32 a3, __u32 port)
{
	__u32 h = a0 * 0x9e3779b1u ^ a1 * 0x85ebca77u ^ a2 * 0xc2b2ae3du ^ a3 * 0x27d4eb2fu ^ port * 0x165667b1u;

	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 16;
	return h & 0xffff;
}
struct dp_lb_endpoint {
	__u32 addr[4];  /* host-order words, as the packet key's */
	__u16 port;     /* host order */
	__u8 proto;
	__u8 family;    /* 4 or 6 */
};
_Static_assert(sizeof(struct dp_lb_endpoint) == 20, "dp_lb_endpoint changed: bump DP_ABI_VERSION");

struct dp_lb_vip {
	__u32 slot;       /* counter slot in dp_lb_vstats */
	__u32 ring_start; /* first entry of the VIP's table in dp_lb_ring */
	__u32 ring_size;  /* 0: no backend takes new flows */
	__u32 flags;      /* DP_LB_VIP_* */
};
/* Direct server return: the packet goes to the backend's MAC unchanged at L3 (the
 * backend holds the VIP and answers the client itself); its connection's reply entry
 * is keyed by the VIP, so replies that do pass here leave untranslated. */
#define DP_LB_VIP_DSR 1U
_Static_assert(sizeof(struct dp_lb_vip) == 16, "dp_lb_vip changed: bump DP_ABI_VERSION");

struct dp_lb_backend {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 pad;
	__u32 epoch;      /* 0: removed; its connections are balanced afresh */
};
_Static_assert(sizeof(struct dp_lb_backend) == 24, "dp_lb_backend changed: bump DP_ABI_VERSION");

/* dp_lb_health: ARRAY[DP_LB_MAX_BACKENDS] per interface, by backend slot, made and written
 * by the control plane (the agent's health checks) and read by every apply: a backend
 * that is down gets no Maglev entries, as a draining one. No program reads it. An apply
 * zeroes a slot it gives a new backend (up, never checked). */
struct dp_lb_health {
	__u64 checked_ns; /* CLOCK_REALTIME of the last check; 0: never checked */
	__u32 checks;     /* checks run since the slot was given */
	__u32 latency_us; /* the last check's */
	__s32 result;     /* the last check's: 0 passed; > 0 the HTTP status that failed; < 0 -errno */
	__u8 down;        /* failed `fall` checks in a row: takes no new flows until `rise` pass */
	__u8 streak;      /* checks in a row with the last one's outcome (up to 255) */
	__u8 pad[2];
};
_Static_assert(sizeof(struct dp_lb_health) == 24, "dp_lb_health changed: bump DP_ABI_VERSION");

/* dp_lb_vstats: PERCPU_ARRAY[DP_LB_MAX_VIPS]; dp_lb_bstats: PERCPU_ARRAY[DP_LB_MAX_BACKENDS].
 * packets/bytes: client packets forwarded; connections: flows that became established;
 * no_backend (VIPs only): new flows dropped because no backend takes new flows. */
struct dp_lb_stats {
	__u64 packets;
	__u64 bytes;
	__u64 connections;
	__u64 no_backend;
};
_Static_assert(sizeof(struct dp_lb_stats) == 32, "dp_lb_stats changed: bump DP_ABI_VERSION");

/* ---- forwarding: the next hops the FIB gave, remembered -------------------------
 *
 * What bpf_fib_lookup() answered for a destination (egress interface and MAC addresses)
 * is remembered for DP_FWD_CACHE_TICKS and serves packets up to the longest one the
 * FIB approved (the helper checks the egress MTU); then the FIB is asked again, so a
 * route or neighbour change takes effect within that time. Toward a backend it is kept
 * per CPU in dp_lb_hops (PERCPU_ARRAY[DP_LB_MAX_BACKENDS] by backend slot, valid while its
 * tag is the slot's epoch); toward anything else (replies to clients) in dp_fwd_cache
 * (LRU_HASH[DP_FWD_CACHE_ENTRIES] by destination address, shared by the CPUs). Both are
 * the program's own, not pinned. Source-based policy routing is not followed.
 */
struct dp_fwd_key {
	__u32 addr[4];  /* the packet's destination, network order */
	__u32 family;
};
_Static_assert(sizeof(struct dp_fwd_key) == 20, "dp_fwd_key changed: bump DP_ABI_VERSION");

struct dp_fwd_hop {
	__u32 ifindex;
	__u32 tag;      /* dp_lb_hops: the backend slot's epoch when the FIB was asked */
	__u16 max_len;  /* the longest packet (IP total length) the FIB approved */
	__u8 dmac[6];
	__u8 smac[6];
	__u8 pad[2];
	__u64 expires;  /* bpf_jiffies64() after which the FIB is asked again */
};
_Static_assert(sizeof(struct dp_fwd_hop) == 32, "dp_fwd_hop changed: bump DP_ABI_VERSION");

/* ---- NAT and the connection table --------------------------------------------
 *
 * Rules, per interface and generation (DP_GEN_NAT): dp_nat_snat[slot] is an ARRAY of
 * DP_NAT_MAX_SNAT + 1 dp_nat_snat entries (entry 0's count: entries 1..count in use, in
 * file order, one per SNAT rule and src prefix; first match wins), read by the tc egress
 * program for packets leaving with no connection. dp_nat_dnat[slot] is a HASH from the
 * public endpoint (dst, dst_port, proto, family) to its dp_nat_dnat target, read at XDP
 * ingress. dp_nat_stats: PERCPU_ARRAY[DP_NAT_MAX_RULES] of dp_nat_stats by rule slot, one
 * for all interfaces (pinned at the pin root; slots are numbered across interfaces).
 *
 * Connections (NAT's and the load balancer's): two entries each, keyed by a packet's
 * tuple as it arrives at the hook that translates it (dp_ct_key): the original
 * direction's, and the reply's (the translated tuple reversed). Each entry holds the
 * tuple its packets leave with, which side it rewrites, and the interface whose rules
 * made it. A NAT entry that rewrites the source (SNAT out, DNAT replies) serves that
 * interface's tc egress, one that rewrites the destination (DNAT in, SNAT replies) its
 * XDP ingress; load-balancer entries are served at XDP ingress (see the load balancers
 * above). The fast path: a packet that arrives at another interface's XDP ingress with
 * the key of an entry that
 * rewrites the source, not a fragment, is translated there and redirected, if the FIB
 * sends it out the entry's interface (else it goes to the stack, translated); it never
 * reaches that interface's tc egress. Only generations with DP_GEN_NAT_PEERS take it (an
 * interface with NAT rules of its own too). ICMP echo uses the identifier as both ports. The two tables are shared by
 * every interface's programs (pinned at the pin root). A connection starts in dp_ct_new
 * (LRU_HASH[DP_CT_NEW_MAX]) and moves to dp_ct (LRU_HASH[DP_CT_MAX]) with the first
 * reply, so a flood of new flows only churns dp_ct_new and never evicts a connection
 * that was answered.
 *
 * Expiry is lazy: an entry idle past its state's timeout (DP_CT_TIMEOUT_*, seconds) is
 * treated as absent, unless the other direction's entry is still live. A SNAT port is
 * free for a new flow when the reply key it would make is absent or expired; a new flow
 * keeps its source port when that is free and inside the rule's range, else tries up to
 * DP_NAT_PORT_TRIES ports of the range at random (all of a range no longer than that).
 */
#define DP_CT_TIMEOUT_TCP_NEW 60           /* SYN sent, no answer yet */
#define DP_CT_TIMEOUT_TCP_ESTABLISHED 86400 /* RFC 5382: at least 2 h 4 min */
#define DP_CT_TIMEOUT_TCP_CLOSING 120      /* FIN seen: the close and TIME_WAIT */
#define DP_CT_TIMEOUT_TCP_CLOSED 10        /* RST seen */
#define DP_CT_TIMEOUT_UDP_NEW 30           /* unreplied */
#define DP_CT_TIMEOUT_UDP_ESTABLISHED 300  /* replied; RFC 4787 recommends >= 5 min */
#define DP_CT_TIMEOUT_ICMP 30

enum dp_ct_state {
	DP_CT_NEW = 1,         /* only the original direction seen */
	DP_CT_ESTABLISHED = 2, /* a reply seen */
	DP_CT_CLOSING = 3,     /* TCP FIN seen */
	DP_CT_CLOSED = 4,      /* TCP RST seen */
};

enum dp_ct_kind {
	DP_CT_SNAT = 1,
	DP_CT_DNAT = 2,
	DP_CT_LB = 3,
};

/* A packet's tuple: addresses and ports as host-order words (IPv4 in word 0). */
struct dp_ct_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;   /* 4 or 6 */
	__u8 pad[2];
};
_Static_assert(sizeof(struct dp_ct_key) == 40, "dp_ct_key changed: bump DP_ABI_VERSION");

struct dp_ct_entry {
	struct dp_ct_key to; /* the tuple the packet leaves with (proto, family: the key's) */
	__u8 state;     /* enum dp_ct_state, the same in both entries */
	__u8 kind;      /* enum dp_ct_kind */
	__u8 reply;     /* 1: the reply direction's entry */
	__u8 rewrites_src; /* 1: rewrites the source (tc egress); 0: the destination (XDP) */
	__u32 rule;     /* NAT: the rule's counter slot; load balancer: the backend's slot */
	__u32 ifindex;  /* the interface whose rules made the connection */
	__u32 epoch;    /* load balancer: the backend slot's epoch when it was balanced */
	__u32 vip;      /* load balancer: the VIP's counter slot */
	__u32 pad;
	__u64 created_ns; /* bpf_ktime_get_coarse_ns() */
	__u64 seen_ns;    /* the last packet this way */
	__u64 packets;    /* this way */
	__u64 bytes;
};
_Static_assert(sizeof(struct dp_ct_entry) == 96, "dp_ct_entry changed: bump DP_ABI_VERSION");

struct dp_nat_snat {
	__u32 count;    /* header only */
	__u32 rule;     /* counter slot */
	__u32 mask[4];  /* a source matches when (src & mask) == value, word by word */
	__u32 value[4];
	__u32 to[4];    /* the address it leaves with */
	__u16 port_lo;  /* inclusive range of source ports (ICMP echo identifiers) */
	__u16 port_hi;
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct dp_nat_snat) == 64, "dp_nat_snat changed: bump DP_ABI_VERSION");

struct dp_nat_dnat {
	__u32 to[4];
	__u16 to_port;
	__u16 pad;
	__u32 rule;     /* counter slot */
};
_Static_assert(sizeof(struct dp_nat_dnat) == 24, "dp_nat_dnat changed: bump DP_ABI_VERSION");

/* Firewall verdicts of fragmented datagrams: a first fragment (offset 0, more to come)
 * carries the L4 header and is classified as any packet; its verdict (the deciding rule's
 * counter slot and action) is remembered in dp_fw_frag (LRU_HASH of DP_FW_FRAG_MAX per
 * interface) under the datagram's dp_frag_key, and the datagram's later fragments, which
 * carry no ports, take that verdict for DP_FW_FRAG_TIMEOUT seconds. A later fragment with
 * no entry (its first fragment not seen yet, or long ago) is classified on what it
 * carries: rules without ports and the default decide it. */
#define DP_FW_FRAG_TIMEOUT 30

struct dp_fw_frag {
	__u32 slot;     /* the deciding rule's counter slot (0: the default) */
	__u32 action;   /* DP_FW_ALLOW or DP_FW_DROP */
	__u64 seen_ns;  /* the first fragment, bpf_ktime_get_coarse_ns() */
};
_Static_assert(sizeof(struct dp_fw_frag) == 16, "dp_fw_frag changed: bump DP_ABI_VERSION");

/* NAT fragments: the first fragment of a datagram carries the L4 header and is translated
 * with its connection; its translation is remembered in dp_nat_frag (LRU_HASH of
 * DP_NAT_FRAG_MAX) under the datagram's (src, dst, id, proto, family) as it arrived, and
 * later fragments of the datagram get the same address (they carry no ports or L4
 * checksum). A later fragment with no entry (its first fragment has not been seen, or
 * came more than DP_NAT_FRAG_TIMEOUT seconds ago) passes untranslated. */
#define DP_NAT_FRAG_TIMEOUT 30

struct dp_frag_key {
	__u32 src[4];
	__u32 dst[4];
	__u32 id;       /* IPv4: 16 bits */
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};
_Static_assert(sizeof(struct dp_frag_key) == 40, "dp_frag_key changed: bump DP_ABI_VERSION");

struct dp_frag_xlate {
	__u32 addr[4];  /* the address the fragments get (host order) */
	__u32 rule;     /* counter slot */
	__u8 rewrites_src; /* 1: the source (tc egress); 0: the destination (XDP) */
	__u8 pad[3];
	__u64 seen_ns;  /* the first fragment */
};
_Static_assert(sizeof(struct dp_frag_xlate) == 32, "dp_frag_xlate changed: bump DP_ABI_VERSION");

/* packets/bytes: translated packets of the rule's connections, both ways; connections:
 * mappings made; no_port (SNAT): new flows dropped for want of a free port. */
struct dp_nat_stats {
	__u64 packets;
	__u64 bytes;
	__u64 connections;
	__u64 no_port;
};
_Static_assert(sizeof(struct dp_nat_stats) == 32, "dp_nat_stats changed: bump DP_ABI_VERSION");

/* ---- capture (xdpctl capture): what the programs did to each packet ------------------
 *
 * dp_capture_on, a global of its own section (.data.capture: an ARRAY[1] of one __u32
 * every program shares), is nonzero while a capture runs; reading it, one load, is all
 * a packet pays while none does. dp_capture is an ARRAY[1] holding the running
 * capture's filter. A packet that passes the filter and the
 * per-CPU token bucket (dp_capture_stats, PERCPU_ARRAY[1]) is copied, as the program
 * leaves it, into the ring buffer dp_capture_ring with the verdict and what decided it. */

enum dp_hook {
	DP_HOOK_XDP = 0,
	DP_HOOK_TC = 1,
};

/* What decided a packet's fate: a kind in the top byte, a slot below. */
#define DP_DECIDER_NONE    0u
#define DP_DECIDER_RULE    (1u << 24)  /* firewall rule counter slot (0: the default action) */
#define DP_DECIDER_LIMIT   (2u << 24)  /* rate limit counter slot */
#define DP_DECIDER_BACKEND (3u << 24)  /* load-balancer backend slot */
#define DP_DECIDER_KIND    0xff000000u
#define DP_DECIDER_SLOT    0x00ffffffu

#define DP_CAPTURE_SNAP_MAX 1024
#define DP_CAPTURE_RING_BYTES (8u << 20)

struct dp_capture_cfg {
	__u32 on;        /* nonzero while a capture runs */
	__u32 ifindex;   /* 0: every interface */
	__u32 hooks;     /* bit per enum dp_hook */
	__u32 verdicts;  /* bit per enum dp_verdict */
	__u32 reasons;   /* bit per enum dp_reason (DP_REASON_NONE's bit for every verdict but drop) */
	__u32 decider;   /* with decider_mask: (record's decider & mask) == decider */
	__u32 decider_mask;
	__u32 snaplen;   /* bytes copied, at most DP_CAPTURE_SNAP_MAX */
	__u64 rate;      /* records per second, per CPU */
	__u64 burst;     /* records a CPU may send at once */
};
_Static_assert(sizeof(struct dp_capture_cfg) == 48, "dp_capture_cfg changed: bump DP_ABI_VERSION");

/* Per CPU. tokens are in records x 1e9 (a record costs 1e9; refilled `rate` per ns). */
struct dp_capture_stats {
	__u64 tokens;
	__u64 last_ns;
	__u64 recorded;  /* records in the ring */
	__u64 limited;   /* matched, not recorded: over the rate */
	__u64 lost;      /* matched, not recorded: the ring was full */
};
_Static_assert(sizeof(struct dp_capture_stats) == 40, "dp_capture_stats changed: bump DP_ABI_VERSION");

struct dp_capture_rec {
	__u64 ts_ns;     /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 ifindex;
	__u32 len;       /* the frame's length */
	__u32 caplen;    /* bytes of it in data */
	__u32 decider;
	__u8 hook;       /* enum dp_hook */
	__u8 verdict;    /* enum dp_verdict */
	__u8 reason;     /* enum dp_reason */
	__u8 pad[5];
	__u8 data[DP_CAPTURE_SNAP_MAX];
};
_Static_assert(sizeof(struct dp_capture_rec) == 32 + DP_CAPTURE_SNAP_MAX, "dp_capture_rec changed: bump DP_ABI_VERSION");

#endif /* XDPCTL_ABI_H */
