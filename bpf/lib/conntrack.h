/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * conntrack.h — the connection table of NAT and the load balancer, which every XDP and tc
 * program shares: two entries per connection (original and reply direction), states,
 * lazy expiry, and the move from the new table to the established one on the first
 * reply (for the load balancer, the client's second packet). See xdpctl_abi.h, "NAT and
 * the connection table".
 */
#ifndef DP_CONNTRACK_H
#define DP_CONNTRACK_H

#include <linux/in.h>
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_CT_MAX);
	__type(key, struct dp_ct_key);
	__type(value, struct dp_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_CT_NEW_MAX);
	__type(key, struct dp_ct_key);
	__type(value, struct dp_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_ct_new SEC(".maps");

#define CT_TCP_FIN 0x01
#define CT_TCP_SYN 0x02
#define CT_TCP_RST 0x04
#define CT_TCP_ACK 0x10
#define CT_NS 1000000000ULL

/* The packet's tuple; -1 when it has none (a non-first fragment, or ICMP other than echo). */
static __always_inline int ct_key_of(const struct dp_pkt *p, struct dp_ct_key *k)
{
	__builtin_memcpy(k->src, &p->key[DP_FW_F_SRC0], sizeof(k->src));
	__builtin_memcpy(k->dst, &p->key[DP_FW_F_DST0], sizeof(k->dst));
	k->proto = p->key[DP_FW_F_PROTO];
	k->family = p->key[DP_FW_F_FAMILY];
	k->pad[0] = k->pad[1] = 0;
	if (k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6) {
		if (p->icmp_kind != DP_ICMP_ECHO_REQUEST && p->icmp_kind != DP_ICMP_ECHO_REPLY)
			return -1;
		k->sport = k->dport = p->icmp_id;
		return 0;
	}
	if (p->key[DP_FW_F_SPORT] == DP_FW_NO_PORT)
		return -1;
	k->sport = p->key[DP_FW_F_SPORT];
	k->dport = p->key[DP_FW_F_DPORT];
	return 0;
}

/* The key of the packets that answer a packet leaving with tuple *t. */
static __always_inline void ct_reverse(const struct dp_ct_key *t, struct dp_ct_key *r)
{
	__builtin_memcpy(r->src, t->dst, sizeof(r->src));
	__builtin_memcpy(r->dst, t->src, sizeof(r->dst));
	r->sport = t->dport;
	r->dport = t->sport;
	r->proto = t->proto;
	r->family = t->family;
	r->pad[0] = r->pad[1] = 0;
}

static __always_inline __u64 ct_timeout(__u8 proto, __u8 state)
{
	__u32 s = DP_CT_TIMEOUT_ICMP;

	if (proto == IPPROTO_TCP)
		s = state == DP_CT_ESTABLISHED ? DP_CT_TIMEOUT_TCP_ESTABLISHED
		  : state == DP_CT_CLOSING     ? DP_CT_TIMEOUT_TCP_CLOSING
		  : state == DP_CT_CLOSED      ? DP_CT_TIMEOUT_TCP_CLOSED
					       : DP_CT_TIMEOUT_TCP_NEW;
	else if (proto == IPPROTO_UDP)
		s = state == DP_CT_NEW ? DP_CT_TIMEOUT_UDP_NEW : DP_CT_TIMEOUT_UDP_ESTABLISHED;
	return s * CT_NS;
}

static __always_inline int ct_fresh(const struct dp_ct_entry *e, __u8 proto, __u64 now)
{
	return now <= e->seen_ns || now - e->seen_ns <= ct_timeout(proto, e->state);
}

/* The other direction's entry of e (in either table), or null. Not inlined: its key
 * would take stack in every caller. */
static __noinline struct dp_ct_entry *ct_partner(const struct dp_ct_entry *e)
{
	struct dp_ct_key k;
	struct dp_ct_entry *o;

	ct_reverse(&e->to, &k);
	o = bpf_map_lookup_elem(&dp_ct, &k);
	return o ? o : bpf_map_lookup_elem(&dp_ct_new, &k);
}

/* A connection lives while either direction's entry does. */
static __always_inline int ct_live(const struct dp_ct_entry *e, __u8 proto, __u64 now)
{
	const struct dp_ct_entry *o;

	if (ct_fresh(e, proto, now))
		return 1;
	o = ct_partner(e);
	return o && ct_fresh(o, proto, now);
}

/* The live entry of the packets with tuple *k, or null; *fresh: found in dp_ct_new. */
static __always_inline struct dp_ct_entry *ct_find(const struct dp_ct_key *k, __u64 now, int *fresh)
{
	struct dp_ct_entry *e = bpf_map_lookup_elem(&dp_ct, k);

	*fresh = 0;
	if (e && ct_live(e, k->proto, now))
		return e;
	e = bpf_map_lookup_elem(&dp_ct_new, k);
	*fresh = 1;
	return e && ct_live(e, k->proto, now) ? e : 0;
}

/* Whether no live connection answers to *k; a dead entry there is removed. */
static __always_inline int ct_vacant(const struct dp_ct_key *k, __u64 now)
{
	struct dp_ct_entry *e = bpf_map_lookup_elem(&dp_ct, k);

	if (e) {
		if (ct_live(e, k->proto, now))
			return 0;
		bpf_map_delete_elem(&dp_ct, k);
	}
	e = bpf_map_lookup_elem(&dp_ct_new, k);
	if (e) {
		if (ct_live(e, k->proto, now))
			return 0;
		bpf_map_delete_elem(&dp_ct_new, k);
	}
	return 1;
}

/* Who opens a connection: its kind, rule (NAT) or backend slot and epoch and VIP (load
 * balancer), and interface. */
struct ct_origin {
	__u32 kind;
	__u32 rule;
	__u32 ifindex;
	__u32 epoch;
	__u32 vip;
};

/* Opens a connection for packets *k, answered by packets *rk (so *k leaves as *rk
 * reversed), with its first packet of `len` bytes: the reply entry first, which fails
 * (-1) when its key is taken (by another CPU meanwhile, or an entry not yet known dead).
 * One entry on the stack serves as both (the stack is small). */
static __always_inline int ct_open(const struct dp_ct_key *k, const struct dp_ct_key *rk, const struct ct_origin *o,
				   __u64 now, __u32 len)
{
	struct dp_ct_entry e = {};

	ct_reverse(k, &e.to);
	e.state = DP_CT_NEW;
	e.kind = o->kind;
	e.reply = 1;
	e.rewrites_src = o->kind != DP_CT_SNAT;
	e.rule = o->rule;
	e.ifindex = o->ifindex;
	e.epoch = o->epoch;
	e.vip = o->vip;
	e.created_ns = now; /* seen_ns 0: until a reply, the original entry keeps it alive */
	if (bpf_map_update_elem(&dp_ct_new, rk, &e, BPF_NOEXIST))
		return -1;
	ct_reverse(rk, &e.to);
	e.reply = 0;
	e.rewrites_src = o->kind == DP_CT_SNAT;
	e.seen_ns = now;
	e.packets = 1;
	e.bytes = len;
	return bpf_map_update_elem(&dp_ct_new, k, &e, BPF_ANY) ? -1 : 0;
}

/* Moves the entry of *k (in dp_ct_new) to dp_ct with `state`, copied from the map's own
 * value (a copy on the stack would cost every caller's chain 96 bytes). */
static __always_inline void ct_promote(const struct dp_ct_key *k, struct dp_ct_entry *e, __u8 state)
{
	e->state = state;
	bpf_map_update_elem(&dp_ct, k, e, BPF_ANY);
	bpf_map_delete_elem(&dp_ct_new, k);
}

/* Moves a connection to state `next`: both entries, which move to dp_ct when the first
 * reply establishes it (`fresh`: e is in dp_ct_new). Not inlined: it is rare. */
static __noinline void ct_transition(const struct dp_ct_key *k, struct dp_ct_entry *e, int fresh, __u8 next)
{
	struct dp_ct_entry *o;
	struct dp_ct_key ok;

	ct_reverse(&e->to, &ok);
	o = bpf_map_lookup_elem(fresh ? (void *)&dp_ct_new : (void *)&dp_ct, &ok);
	if (fresh && next == DP_CT_ESTABLISHED) {
		if (o)
			ct_promote(&ok, o, next);
		ct_promote(k, e, next);
		return;
	}
	e->state = next;
	if (o)
		o->state = next;
}

/* Accounts a packet of entry e (of key *k) and moves the connection's state on: TCP RST
 * closes, FIN starts closing, a SYN reopens a closed tuple; the first reply establishes
 * it, or for the load balancer the client's second packet (for TCP, one without SYN):
 * its replies may bypass it, and a backend's SYN-ACK to a spoofed SYN must not move the
 * flow out of the table of new connections. Both entries keep the same state. */
static __always_inline void ct_seen(const struct dp_ct_key *k, struct dp_ct_entry *e, int fresh,
				    const struct dp_pkt *p, __u64 now)
{
	__u8 state = e->state, next = state;

	e->seen_ns = now;
	e->packets++;
	e->bytes += p->len;
	if (k->proto == IPPROTO_TCP) {
		__u8 f = p->tcp_flags;

		if (f & CT_TCP_RST)
			next = DP_CT_CLOSED;
		else if (f & CT_TCP_FIN)
			next = state == DP_CT_CLOSED ? state : DP_CT_CLOSING;
		else if ((f & (CT_TCP_SYN | CT_TCP_ACK)) == CT_TCP_SYN) {
			if (!e->reply && state >= DP_CT_CLOSING)
				next = DP_CT_NEW;
		} else if (state == DP_CT_NEW && (e->kind == DP_CT_LB ? !e->reply : e->reply))
			next = DP_CT_ESTABLISHED;
	} else if (state == DP_CT_NEW && (e->kind == DP_CT_LB ? !e->reply && e->packets > 1 : e->reply)) {
		next = DP_CT_ESTABLISHED;
	}
	if (next != state)
		ct_transition(k, e, fresh, next);
}

#endif
