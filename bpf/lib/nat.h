/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * nat.h — SNAT and DNAT rules: which new flow a rule takes, the mapping it gets (for
 * SNAT a free port of the rule's range, searched with bounded tries), its connection,
 * and the rule's counters. See xdpctl_abi.h, "NAT and the connection table".
 */
#ifndef DP_NAT_H
#define DP_NAT_H

#include "common.h"
#include "conntrack.h"

struct dp_nat_snat_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_NAT_MAX_SNAT + 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dp_nat_snat));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_nat_snat_table);
} dp_nat_snat SEC(".maps");

struct dp_nat_dnat_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DP_NAT_MAX_DNAT);
	__uint(key_size, sizeof(struct dp_lb_endpoint));
	__uint(value_size, sizeof(struct dp_nat_dnat));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_nat_dnat_table);
} dp_nat_dnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_NAT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct dp_nat_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_nat_stats SEC(".maps");

static __always_inline void nat_count(__u32 rule, const struct dp_pkt *p, int connection, int no_port)
{
	struct dp_nat_stats *s = bpf_map_lookup_elem(&dp_nat_stats, &rule);

	if (!s)
		return;
	if (no_port) {
		s->no_port++;
		return;
	}
	s->packets++;
	s->bytes += p->len;
	s->connections += connection;
}

enum nat_connection {
	NAT_CT_NONE = 0,  /* no connection has the packet */
	NAT_CT_DST,       /* translate the destination (XDP: SNAT replies, DNAT) */
	NAT_CT_SRC,       /* translate the source (tc egress, or XDP's fast path) */
	NAT_CT_OTHER,     /* another hook's or the load balancer's: left alone here */
};

/* Which side entry e has a packet of interface `ifindex` translated on this hook (`tc`:
 * egress, else XDP ingress): NAT_CT_DST, NAT_CT_SRC or NAT_CT_OTHER. With `fast`, XDP also
 * takes the fast path: the source rewrite of another interface's entry, for whole packets
 * (a fragmented datagram goes through the stack, where the fragment tables are). */
static __always_inline int nat_serves(const struct dp_ct_entry *e, const struct dp_pkt *p, int tc, int fast)
{
	if (e->kind == DP_CT_LB)
		return NAT_CT_OTHER;
	if (e->ifindex == p->ifindex)
		return e->rewrites_src == tc ? (tc ? NAT_CT_SRC : NAT_CT_DST) : NAT_CT_OTHER;
	return fast && !tc && e->rewrites_src && p->frag == DP_FRAG_NONE ? NAT_CT_SRC : NAT_CT_OTHER;
}

/* A packet of a live connection on this hook (`tc`: egress, else XDP ingress, with the
 * fast path when `fast`): when the connection's entry is served here, accounts the packet
 * and fills *to (the tuple it leaves with), *rule and *owner (the entry's interface).
 * Returns the side to translate (nat_serves), or NAT_CT_NONE. */
static __always_inline int nat_connection(const struct dp_ct_key *k, const struct dp_pkt *p, int tc, int fast, __u64 now,
					  struct dp_ct_key *to, __u32 *rule, __u32 *owner)
{
	struct dp_ct_entry *e;
	int fresh, side;

	e = ct_find(k, now, &fresh);
	if (!e)
		return NAT_CT_NONE;
	side = nat_serves(e, p, tc, fast);
	if (side == NAT_CT_OTHER)
		return side;
	*to = e->to;
	*rule = e->rule;
	*owner = e->ifindex;
	ct_seen(k, e, fresh, p, now);
	nat_count(*rule, p, 0, 0);
	return side;
}

/* A SNAT rule search: the source, and the table, its count and the match found. */
struct nat_rule_search {
	const struct dp_ct_key *k;
	void *table;
	__u32 count;
	const struct dp_nat_snat *found;
};

/* Tries entry i + 1 (bpf_loop callback). Returns 1 to stop. */
static long nat_try_rule(__u32 i, void *ctx)
{
	struct nat_rule_search *s = ctx;
	const struct dp_ct_key *k = s->k;
	const struct dp_nat_snat *r;
	__u32 index = i + 1;

	if (index > s->count)
		return 1;
	r = bpf_map_lookup_elem(s->table, &index);
	if (!r)
		return 1;
	if (r->family == k->family && (k->src[0] & r->mask[0]) == r->value[0] &&
	    (k->src[1] & r->mask[1]) == r->value[1] && (k->src[2] & r->mask[2]) == r->value[2] &&
	    (k->src[3] & r->mask[3]) == r->value[3]) {
		s->found = r;
		return 1;
	}
	return 0;
}

/* The first SNAT entry of the generation in `slot` whose source matches *k. */
static __always_inline const struct dp_nat_snat *nat_snat_rule(const struct dp_ct_key *k, __u32 slot)
{
	struct nat_rule_search s = { .k = k };
	const struct dp_nat_snat *head;
	__u32 zero = 0;

	s.table = bpf_map_lookup_elem(&dp_nat_snat, &slot);
	if (!s.table)
		return 0;
	head = bpf_map_lookup_elem(s.table, &zero);
	if (!head || !head->count)
		return 0;
	s.count = head->count;
	bpf_loop(DP_NAT_MAX_SNAT, nat_try_rule, &s, 0);
	return s.found;
}

/* A port search: the flow, the tuple it would leave with, and the rule's range. */
struct nat_search {
	const struct dp_ct_key *k;
	struct dp_ct_key *to;
	__u64 now;
	__u32 len;
	struct ct_origin origin;
	__u32 lo;
	__u32 range;
	__u32 start;
	int random; /* pick ports at random instead of stepping from `start` */
	int found;
};

/* Tries port i of the search (bpf_loop callback): the i-th from `start`, or one at
 * random. Returns 1 to stop. */
static long nat_try_port(__u32 i, void *ctx)
{
	struct nat_search *s = ctx;
	struct dp_ct_key rk;
	__u32 port;

	if (!s->range)
		return 1;
	port = s->lo + (s->random ? bpf_get_prandom_u32() : s->start + i) % s->range;
	s->to->sport = port;
	if (s->to->proto == IPPROTO_ICMP || s->to->proto == IPPROTO_ICMPV6)
		s->to->dport = port;
	ct_reverse(s->to, &rk);
	if (ct_vacant(&rk, s->now) && !ct_open(s->k, &rk, &s->origin, s->now, s->len)) {
		s->found = 1;
		return 1;
	}
	return 0;
}

static __always_inline __u32 nat_flow_hash(const struct dp_ct_key *k)
{
	__u32 h = k->src[0] ^ k->src[3] ^ (k->dst[0] * 0x9e3779b1) ^ k->dst[3] ^ ((__u32)k->sport << 16 | k->dport);

	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	return h;
}

/* Maps a new flow *k (first packet: *p) leaving through the generation in `slot`
 * to the first SNAT rule that takes it: that rule's address and a free port, and opens
 * its connection; fills *to and *rule. Returns 0; NAT_NO_RULE; or NAT_NO_PORT when no
 * port of the range was free. Not inlined: its searches take stack (and only the tc
 * program calls it). */
enum { NAT_NO_RULE = 1, NAT_NO_PORT = 2 };

static __noinline __attribute__((unused)) int nat_snat_open(const struct dp_ct_key *k, __u32 slot, const struct dp_pkt *p,
							    struct dp_ct_key *to, __u32 *rule)
{
	const struct dp_nat_snat *r = nat_snat_rule(k, slot);
	struct nat_search s = { .k = k, .to = to, .now = bpf_ktime_get_coarse_ns() };

	if (!r || !p || r->port_hi < r->port_lo)
		return NAT_NO_RULE;
	s.len = p->len;
	s.origin.kind = DP_CT_SNAT;
	s.origin.ifindex = p->ifindex;
	*rule = s.origin.rule = r->rule;
	s.lo = r->port_lo;
	s.range = (__u32)r->port_hi - r->port_lo + 1;
	*to = *k;
	__builtin_memcpy(to->src, r->to, sizeof(to->src));
	if (k->sport >= r->port_lo && k->sport <= r->port_hi) {
		s.start = k->sport - r->port_lo;
		nat_try_port(0, &s);
	}
	/* A range of at most DP_NAT_PORT_TRIES ports is searched whole; in a wider one ports
	 * are tried at random (ports in use cluster: a run of them would stop a search that
	 * steps by one). */
	if (!s.found) {
		s.start = nat_flow_hash(k) % s.range;
		s.random = s.range > DP_NAT_PORT_TRIES;
		bpf_loop(s.random ? DP_NAT_PORT_TRIES : s.range, nat_try_port, &s, 0);
	}
	return s.found ? 0 : NAT_NO_PORT;
}

/* Maps a new flow *k (first packet: *p) to the DNAT target of the generation in
 * `slot` that its destination names, and opens its connection; fills *to and *rule.
 * Returns 0, or -1 (no rule, or its reply tuple is taken). Not inlined: its entry takes
 * stack (and only the XDP program calls it). */
static __noinline __attribute__((unused)) int nat_dnat_open(const struct dp_ct_key *k, __u32 slot, const struct dp_pkt *p,
							    struct dp_ct_key *to, __u32 *rule)
{
	void *table = bpf_map_lookup_elem(&dp_nat_dnat, &slot);
	struct ct_origin origin = { .kind = DP_CT_DNAT };
	const struct dp_nat_dnat *d;
	union { /* one after the other: the stack is small */
		struct dp_lb_endpoint public;
		struct dp_ct_key reply;
	} key = {};
	struct dp_ct_key *rk = &key.reply;

	if (!table || !p || k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6)
		return -1;
	__builtin_memcpy(key.public.addr, k->dst, sizeof(key.public.addr));
	key.public.port = k->dport;
	key.public.proto = k->proto;
	key.public.family = k->family;
	d = bpf_map_lookup_elem(table, &key.public);
	if (!d)
		return -1;
	*to = *k;
	__builtin_memcpy(to->dst, d->to, sizeof(to->dst));
	to->dport = d->to_port;
	*rule = origin.rule = d->rule;
	origin.ifindex = p->ifindex;
	ct_reverse(to, rk);
	return ct_open(k, rk, &origin, bpf_ktime_get_coarse_ns(), p->len);
}

#endif
