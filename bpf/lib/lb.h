/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * lb.h — L4 load balancing: a packet to a VIP goes to the backend its connection already
 * has, else to the one the VIP's Maglev table picks for the flow's hash; a backend's
 * reply on a connection the balancer made leaves from the VIP. Connections live in the
 * shared connection table (conntrack.h). See xdpctl_abi.h for the tables and the
 * connection lifecycle (new, established, stale).
 */
#ifndef DP_LB_H
#define DP_LB_H

#include <linux/in.h>
#include "common.h"
#include "conntrack.h"
#include "rewrite.h"

struct dp_lb_vip_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DP_LB_MAX_VIPS);
	__uint(key_size, sizeof(struct dp_lb_endpoint));
	__uint(value_size, sizeof(struct dp_lb_vip));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_lb_vip_table);
} dp_lb_vips SEC(".maps");

/* Tables of any length: BPF_F_INNER_MAP lets each generation size its own. */
struct dp_lb_ring_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_lb_ring_table);
} dp_lb_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct dp_lb_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct dp_lb_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_vstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct dp_lb_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_bstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_LB_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_vfilter SEC(".maps");

/* The next hop toward each backend, per CPU (see forward.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct dp_fwd_hop);
} dp_lb_hops SEC(".maps");

/* One for all interfaces: the control plane points its pin at the pin root. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_LB_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_rports SEC(".maps");

/* Whether a filter has bit `bit` set (DP_FW_NO_PORT lies past its end). */
static __always_inline int lb_bit_set(void *filter, __u32 bit)
{
	__u32 word = bit / 32;
	__u32 *bits = bpf_map_lookup_elem(filter, &word);

	return bits && (*bits >> (bit % 32)) & 1;
}

/* Whether the packet may be to a VIP of this interface (dp_lb_vfilter). */
static __always_inline int lb_maybe_vip(const struct dp_pkt *p)
{
	const __u32 *k = p->key;

	if (k[DP_FW_F_DPORT] > 0xffff)
		return 0;
	return lb_bit_set(&dp_lb_vfilter, dp_lb_vip_bit(k[DP_FW_F_DST0], k[DP_FW_F_DST0 + 1], k[DP_FW_F_DST0 + 2],
							  k[DP_FW_F_DST0 + 3], k[DP_FW_F_DPORT]));
}

enum lb_step {
	LB_NOT_VIP = 0,   /* not for the load balancer */
	LB_FORWARD,       /* rewrite to *t and forward */
	LB_NO_BACKEND,    /* a new flow to a VIP no backend takes */
};

static __always_inline __u32 lb_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	h ^= k * 0x1b873593;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

/* The flow's hash (MurmurHash3-style over source address and ports): the same on every
 * node, so LB nodes behind ECMP pick the same backend from the same table. */
static __always_inline __u32 lb_hash(const struct dp_pkt *p)
{
	__u32 h = 0x786470; /* "xdp" */

#pragma unroll
	for (int i = 0; i < 4; i++)
		h = lb_mix(h, p->key[DP_FW_F_SRC0 + i]);
	h = lb_mix(h, p->key[DP_FW_F_SPORT] << 16 | p->key[DP_FW_F_DPORT]);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

/* A TCP SYN opens a connection, whatever the table holds for its tuple. */
static __always_inline int lb_opens(const struct dp_pkt *p)
{
	return p->key[DP_FW_F_PROTO] == IPPROTO_TCP && (p->tcp_flags & (CT_TCP_SYN | CT_TCP_ACK)) == CT_TCP_SYN;
}

/* The backend in `slot`, while it is still the one given out at `epoch`. */
static __always_inline const struct dp_lb_backend *lb_backend(__u32 slot, __u32 epoch)
{
	const struct dp_lb_backend *b = bpf_map_lookup_elem(&dp_lb_backends, &slot);

	return b && b->epoch && b->epoch == epoch ? b : 0;
}

static __always_inline void lb_count(void *map, __u32 slot, const struct dp_pkt *p, int connection)
{
	struct dp_lb_stats *s = bpf_map_lookup_elem(map, &slot);

	if (s) {
		s->packets++;
		s->bytes += p->len;
		s->connections += connection;
	}
}

/* Forgets the connection of entry e (key *k): both entries, in both tables. */
static __always_inline void lb_forget(const struct dp_ct_key *k, const struct dp_ct_entry *e)
{
	struct dp_ct_key rk;

	ct_reverse(&e->to, &rk);
	bpf_map_delete_elem(&dp_ct, &rk);
	bpf_map_delete_elem(&dp_ct_new, &rk);
	bpf_map_delete_elem(&dp_ct, k);
	bpf_map_delete_elem(&dp_ct_new, k);
}

/* Frees the reply tuple *rk in `table` (dp_ct or dp_ct_new) for a new connection unless
 * an open connection holds it: one that is dead or has finished (TCP closing or closed)
 * gives it up. A client's kernel may give the port of a connection to one VIP, lingering
 * here in its closing state, to a connection to another VIP that picks the same backend.
 * Returns 1 when *rk is free there. (The old connection's client entry is left to expire:
 * it finished.) */
static __always_inline int lb_reclaim(void *table, const struct dp_ct_key *rk, __u64 now)
{
	struct dp_ct_entry *e = bpf_map_lookup_elem(table, rk);

	if (!e)
		return 1;
	/* Alive by its own clock: a reply entry never answered counts from its opening
	 * (asking the other entry would cost a call this deep in the stack). */
	if (e->state < DP_CT_CLOSING &&
	    (e->seen_ns ? ct_fresh(e, rk->proto, now) : now - e->created_ns <= ct_timeout(rk->proto, DP_CT_NEW)))
		return 0;
	bpf_map_delete_elem(table, rk);
	return 1;
}

/* A packet of a connection the balancer made: a client's, to its backend while that is
 * still there, or a backend's reply, from the VIP. Fills *t and returns LB_FORWARD;
 * LB_NOT_VIP for a packet of no such connection (a client's whose backend is gone, or
 * whose SYN reopens an established tuple, is forgotten here and balanced afresh, and so
 * is a finished connection whose reply tuple a backend's SYN-ACK reuses). A
 * global function, as lb_open: each is verified once on its own, and their frames are
 * siblings of the forwarding's. */
__noinline int lb_connection(const struct dp_pkt *p, struct dp_target *t)
{
	struct dp_ct_entry *e;
	struct dp_ct_key k;
	__u32 slot, epoch, vip;
	__u64 now;
	int fresh, opens, reply, second;

	if (!p || !t || ct_key_of(p, &k))
		return LB_NOT_VIP;
	now = bpf_ktime_get_coarse_ns();
	e = ct_find(&k, now, &fresh);
	if (!e || e->kind != DP_CT_LB)
		return LB_NOT_VIP;
	reply = e->reply;
	/* A backend's SYN-ACK on a connection that has finished answers another connection
	 * that reuses its tuple (the client's port, straight to the backend): not ours. */
	if (reply && e->state >= DP_CT_CLOSING && k.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (CT_TCP_SYN | CT_TCP_ACK)) == (CT_TCP_SYN | CT_TCP_ACK)) {
		lb_forget(&k, e);
		return LB_NOT_VIP;
	}
	slot = e->rule;
	epoch = e->epoch;
	vip = e->vip;
	t->egress = 0; /* a balanced packet may leave by any interface */
	if (reply) {
		__builtin_memcpy(t->to.addr, e->to.src, sizeof(t->to.addr));
		t->to.port = e->to.sport;
		t->side = NAT_SRC;
		t->hop = DP_NO_HOP;
		t->tag = 0;
	} else {
		if (e->ifindex != p->ifindex)
			return LB_NOT_VIP;
		opens = lb_opens(p);
		if ((opens && !fresh) || !lb_backend(slot, epoch)) {
			lb_forget(&k, e);
			return LB_NOT_VIP;
		}
		__builtin_memcpy(t->to.addr, e->to.dst, sizeof(t->to.addr));
		t->to.port = e->to.dport;
		t->side = NAT_DST;
		t->hop = slot;
		t->tag = epoch;
	}
	/* The counters are the balancing interface's: a client's packets, and as a
	 * connection its second packet (replies may arrive elsewhere, or bypass us). */
	second = !reply && e->packets == 1;
	ct_seen(&k, e, fresh, p, now);
	if (!reply) {
		lb_count(&dp_lb_vstats, vip, p, second);
		lb_count(&dp_lb_bstats, slot, p, second);
	}
	return LB_FORWARD;
}

/* Balances a new flow to a VIP of the generation in slot `generation` (none:
 * DP_GEN_SLOTS): the backend the VIP's Maglev table picks for it, and a new connection.
 * Fills *t and returns LB_FORWARD; LB_NOT_VIP; or LB_NO_BACKEND when no backend takes
 * it, or when the reply tuple it would make is another open connection's (the same
 * client address and port to the same backend through another VIP). */
__noinline int lb_open(const struct dp_pkt *p, __u32 generation, struct dp_target *t)
{
	struct ct_origin o = { .kind = DP_CT_LB };
	const struct dp_lb_backend *b;
	const struct dp_lb_vip *vip;
	struct dp_ct_key k;
	union { /* one after the other: the stack is small */
		struct dp_lb_endpoint vip;
		struct dp_ct_key reply;
	} key = {};
	struct dp_ct_key *rk = &key.reply;
	void *vips, *ring;
	__u32 *entry, index, dsr;
	__u64 now;

	if (!p || !t || ct_key_of(p, &k))
		return LB_NOT_VIP;
	vips = bpf_map_lookup_elem(&dp_lb_vips, &generation);
	if (!vips)
		return LB_NOT_VIP;
	__builtin_memcpy(key.vip.addr, k.dst, sizeof(key.vip.addr));
	key.vip.port = k.dport;
	key.vip.proto = k.proto;
	key.vip.family = k.family;
	vip = bpf_map_lookup_elem(vips, &key.vip);
	if (!vip)
		return LB_NOT_VIP;
	o.vip = vip->slot;
	dsr = vip->flags & DP_LB_VIP_DSR;
	ring = bpf_map_lookup_elem(&dp_lb_ring, &generation);
	if (!ring || !vip->ring_size)
		goto no_backend;
	index = vip->ring_start + lb_hash(p) % vip->ring_size;
	entry = bpf_map_lookup_elem(ring, &index);
	if (!entry)
		return LB_NO_BACKEND;
	o.rule = *entry;
	b = bpf_map_lookup_elem(&dp_lb_backends, &o.rule);
	if (!b || !b->family)
		return LB_NO_BACKEND;
	o.epoch = b->epoch;
	o.ifindex = p->ifindex;
	if (dsr) {
		/* Direct server return: the packet leaves as it came, to the backend's MAC
		 * (the next hop of `hop`); replies come from the VIP. */
		ct_reverse(&k, rk);
		__builtin_memcpy(t->to.addr, k.dst, sizeof(t->to.addr));
		t->to.port = k.dport;
	} else {
		/* The replies: from the backend to the client. */
		__builtin_memcpy(rk->src, b->addr, sizeof(rk->src));
		__builtin_memcpy(rk->dst, k.src, sizeof(rk->dst));
		rk->sport = b->port;
		rk->dport = k.sport;
		rk->proto = k.proto;
		rk->family = k.family;
		rk->pad[0] = rk->pad[1] = 0;
		__builtin_memcpy(t->to.addr, b->addr, sizeof(t->to.addr));
		t->to.port = b->port;
	}
	t->side = NAT_DST;
	t->hop = o.rule;
	t->tag = o.epoch;
	t->egress = 0;
	now = bpf_ktime_get_coarse_ns();
	/* dp_ct is asked first; ct_open's insert asks dp_ct_new itself (it fails on a taken
	 * key), which is looked at only then. */
	if (!lb_reclaim(&dp_ct, rk, now) ||
	    (ct_open(&k, rk, &o, now, p->len) && (!lb_reclaim(&dp_ct_new, rk, now) || ct_open(&k, rk, &o, now, p->len))))
		goto no_backend;
	lb_count(&dp_lb_vstats, o.vip, p, 0);
	lb_count(&dp_lb_bstats, o.rule, p, 0);
	return LB_FORWARD;

no_backend:
	{
		struct dp_lb_stats *s = bpf_map_lookup_elem(&dp_lb_vstats, &o.vip);

		if (s)
			s->no_backend++;
	}
	return LB_NO_BACKEND;
}

/* This CPU's remembered next hop toward backend `slot`. */
static __always_inline struct dp_fwd_hop *lb_hop(__u32 slot)
{
	return bpf_map_lookup_elem(&dp_lb_hops, &slot);
}

/* Backend `slot`'s address (host-order words), where its next hop is asked for: a DSR
 * packet still has the VIP as its destination. */
static __always_inline const __u32 *lb_backend_addr(__u32 slot)
{
	const struct dp_lb_backend *b = bpf_map_lookup_elem(&dp_lb_backends, &slot);

	return b ? b->addr : 0;
}

#endif
