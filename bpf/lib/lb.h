/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * lb.h — L4 load balancing: a packet to a VIP goes to the backend its connection already
 * has, else to the one the VIP's Maglev table picks for the flow's hash; a packet from a
 * backend endpoint is a reply to translate back to its VIP. See xdpctl_abi.h for the
 * tables and the connection lifecycle (half-open, established, stale).
 */
#ifndef DP_LB_H
#define DP_LB_H

#include <linux/in.h>
#include "common.h"

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
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_LB_CT_MAX);
	__type(key, struct dp_lb_flow);
	__type(value, struct dp_lb_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_LB_HALF_OPEN_MAX);
	__type(key, struct dp_lb_flow);
	__type(value, struct dp_lb_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_half SEC(".maps");

/* One for all interfaces: the control plane points its pin at the pin root. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DP_LB_MAX_ENDPOINTS);
	__type(key, struct dp_lb_endpoint);
	__type(value, struct dp_lb_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_reply SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_LB_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_vports SEC(".maps");

/* The next hop toward each backend, per CPU (see forward.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct dp_fwd_hop);
} dp_lb_hops SEC(".maps");

/* One for all interfaces, as dp_lb_reply. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_LB_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_lb_rports SEC(".maps");

/* Whether a port filter has `port`'s bit set (DP_FW_NO_PORT lies past its end). */
static __always_inline int lb_port_listed(void *filter, __u32 port)
{
	__u32 word = port / 32;
	__u32 *bits = bpf_map_lookup_elem(filter, &word);

	return bits && (*bits >> (port % 32)) & 1;
}

enum lb_step {
	LB_NOT_VIP = 0,   /* not for a VIP of this interface */
	LB_FORWARD,       /* rewrite to *backend and forward */
	LB_NO_BACKEND,    /* a new flow to a VIP no backend takes */
};

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

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

static __always_inline void lb_endpoint(struct dp_lb_endpoint *e, const struct dp_pkt *p, int dst)
{
	int base = dst ? DP_FW_F_DST0 : DP_FW_F_SRC0;

#pragma unroll
	for (int i = 0; i < 4; i++)
		e->addr[i] = p->key[base + i];
	e->port = p->key[dst ? DP_FW_F_DPORT : DP_FW_F_SPORT];
	e->proto = p->key[DP_FW_F_PROTO];
	e->family = p->key[DP_FW_F_FAMILY];
}

/* The connection's backend, while it is still the backend the connection was given. */
static __always_inline const struct dp_lb_backend *lb_backend_of(const struct dp_lb_conn *c)
{
	__u32 slot = c->backend;
	const struct dp_lb_backend *b = bpf_map_lookup_elem(&dp_lb_backends, &slot);

	return b && b->epoch && b->epoch == c->epoch ? b : 0;
}

static __always_inline void lb_count(void *map, __u32 slot,
				     const struct dp_pkt *p, int connection)
{
	struct dp_lb_stats *s = bpf_map_lookup_elem(map, &slot);

	if (s) {
		s->packets++;
		s->bytes += p->len;
		s->connections += connection;
	}
}

/* Balances a packet addressed to a VIP of the generation in slot `generation` (none:
 * DP_GEN_SLOTS): on LB_FORWARD, *backend and *slot name where it goes. Not inlined: its
 * keys take stack beside the forwarding's. */
static __noinline int lb_balance(const struct dp_pkt *p, __u32 generation,
					       const struct dp_lb_backend **backend, __u32 *slot)
{
	struct dp_lb_endpoint vip_key = {};
	struct dp_lb_flow flow = {};
	struct dp_lb_conn *c, conn = {};
	const struct dp_lb_backend *b = 0;
	const struct dp_lb_vip *vip;
	void *vips, *ring;
	__u32 *entry, index;
	int opens, stale = 0, connection = 0;

	if (!lb_port_listed(&dp_lb_vports, p->key[DP_FW_F_DPORT]))
		return LB_NOT_VIP;
	__builtin_memcpy(flow.src, &p->key[DP_FW_F_SRC0], sizeof(flow.src));
	__builtin_memcpy(flow.dst, &p->key[DP_FW_F_DST0], sizeof(flow.dst));
	flow.sport = p->key[DP_FW_F_SPORT];
	flow.dport = p->key[DP_FW_F_DPORT];
	flow.proto = p->key[DP_FW_F_PROTO];
	flow.family = p->key[DP_FW_F_FAMILY];
	/* A TCP SYN opens a connection, whatever the table holds for its addresses. */
	opens = flow.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;

	/* An established connection needs no VIP lookup: only VIP traffic enters the table,
	 * and a VIP that is gone took its backends (and so its connections) with it. */
	if (!opens) {
		c = bpf_map_lookup_elem(&dp_lb_ct, &flow);
		if (c) {
			b = lb_backend_of(c);
			if (b) {
				conn = *c;
				goto forward;
			}
			stale = 1; /* its backend was removed: balance afresh, keep it established */
		}
	}

	vips = bpf_map_lookup_elem(&dp_lb_vips, &generation);
	if (!vips)
		return LB_NOT_VIP;
	lb_endpoint(&vip_key, p, 1);
	vip = bpf_map_lookup_elem(vips, &vip_key);
	if (!vip)
		return LB_NOT_VIP;
	if (opens)
		bpf_map_delete_elem(&dp_lb_ct, &flow);
	if (!stale) {
		c = bpf_map_lookup_elem(&dp_lb_half, &flow);
		if (c) {
			b = lb_backend_of(c);
			if (b) {
				conn = *c;
				if (!opens) { /* the client's second packet: established */
					bpf_map_update_elem(&dp_lb_ct, &flow, &conn, BPF_ANY);
					bpf_map_delete_elem(&dp_lb_half, &flow);
					connection = 1;
				}
				goto forward;
			}
		}
	}

	ring = bpf_map_lookup_elem(&dp_lb_ring, &generation);
	if (!ring || !vip->ring_size) {
		struct dp_lb_stats *s = bpf_map_lookup_elem(&dp_lb_vstats, &vip->slot);

		if (s)
			s->no_backend++;
		return LB_NO_BACKEND;
	}
	index = vip->ring_start + lb_hash(p) % vip->ring_size;
	entry = bpf_map_lookup_elem(ring, &index);
	if (!entry)
		return LB_NO_BACKEND;
	conn.backend = *entry;
	b = bpf_map_lookup_elem(&dp_lb_backends, &conn.backend);
	if (!b || !b->family)
		return LB_NO_BACKEND;
	conn.epoch = b->epoch;
	conn.vip = vip->slot;
	conn.created_ns = bpf_ktime_get_coarse_ns();
	if (stale) {
		bpf_map_update_elem(&dp_lb_ct, &flow, &conn, BPF_ANY);
		connection = 1;
	} else {
		bpf_map_update_elem(&dp_lb_half, &flow, &conn, BPF_ANY);
	}

forward:
	lb_count(&dp_lb_vstats, conn.vip, p, connection);
	lb_count(&dp_lb_bstats, conn.backend, p, connection);
	*backend = b;
	*slot = conn.backend;
	return LB_FORWARD;
}

/* This CPU's remembered next hop toward backend `slot`. */
static __always_inline struct dp_fwd_hop *lb_hop(__u32 slot)
{
	return bpf_map_lookup_elem(&dp_lb_hops, &slot);
}

/* The VIP a packet from a backend endpoint answers for, or null. */
static __always_inline const struct dp_lb_endpoint *lb_reply(const struct dp_pkt *p)
{
	struct dp_lb_endpoint key = {};

	if (!lb_port_listed(&dp_lb_rports, p->key[DP_FW_F_SPORT]))
		return 0;
	lb_endpoint(&key, p, 0);
	return bpf_map_lookup_elem(&dp_lb_reply, &key);
}

#endif
