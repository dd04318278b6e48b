/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ratelimit.h — token buckets (GCRA) over the traffic the firewall allowed, per limit or
 * per source address. The first matching limit entry charges the packet. See
 * xdpctl_abi.h for the entry table, the bucket arithmetic and what happens when the
 * per-source table is full.
 */
#ifndef DP_RATELIMIT_H
#define DP_RATELIMIT_H

#include "common.h"
#include "bucket.h"
#include "firewall.h"

struct dp_rl_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_RL_MAX_ENTRIES + 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dp_rl_entry)); /* libbpf 1.1 cannot size inner values from BTF */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_rl_table);
} dp_rl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_RL_MAX_LIMITS);
	__type(key, __u32);
	__type(value, struct dp_rl_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_rl_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_RL_MAX_SOURCES);
	__type(key, struct dp_rl_source_key);
	__type(value, struct dp_rl_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_rl_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_RL_MAX_LIMITS);
	__type(key, __u32);
	__type(value, struct dp_rl_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_rl_stats SEC(".maps");

/* The source address masked to the limit's prefix, as the per-source bucket key. */
static __always_inline void rl_source_key(const struct dp_rl_entry *e, const struct dp_pkt *p,
					  struct dp_rl_source_key *k)
{
	__u32 family = p->key[DP_FW_F_FAMILY];
	int left = family == 4 ? e->prefix_v4 : e->prefix_v6;

	k->slot = e->slot;
	k->family = family;
#pragma unroll
	for (int w = 0; w < 4; w++) {
		int bits = left < 0 ? 0 : left > 32 ? 32 : left;

		k->addr[w] = bits == 0 ? 0 : p->key[DP_FW_F_SRC0 + w] & (~0U << (32 - bits));
		left -= 32;
	}
}

/* Runs the packet through its bucket; 1 when it passes. */
static __always_inline int rl_bucket_admits(const struct dp_rl_entry *e, const struct dp_pkt *p)
{
	__u32 slot = e->slot;
	struct dp_rl_bucket *b;

	if (e->scope == DP_RL_PER_SOURCE) {
		struct dp_rl_source_key key = {};

		rl_source_key(e, p, &key);
		b = bpf_map_lookup_elem(&dp_rl_sources, &key);
		if (!b) {
			struct dp_rl_bucket fresh = {};

			bpf_map_update_elem(&dp_rl_sources, &key, &fresh, BPF_NOEXIST);
			b = bpf_map_lookup_elem(&dp_rl_sources, &key);
		}
	} else {
		b = bpf_map_lookup_elem(&dp_rl_buckets, &slot);
	}
	if (!b)
		return 1;
	return rl_charge(e, b, bpf_ktime_get_ns() << DP_RL_TIME_BITS, p->len);
}

/*
 * rl_over — whether the rate limits in generation slot `slot` drop the packet: 0 when
 * they let it through, else the counter slot of the limit it is over, plus one. Counts
 * it as passed or dropped under the limit it matched; a packet matching no limit passes
 * uncounted.
 */
static __always_inline int rl_over(const struct dp_pkt *p, __u32 slot)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&dp_rl, &slot);
	const struct dp_rl_entry *header;
	__u32 count;

	if (!table)
		return 0;
	header = bpf_map_lookup_elem(table, &zero);
	if (!header)
		return 0;
	count = header->count;

	for (__u32 i = 1; i <= DP_RL_MAX_ENTRIES && i <= count; i++) {
		__u32 idx = i, slot;
		const struct dp_rl_entry *e = bpf_map_lookup_elem(table, &idx);
		struct dp_rl_stats *s;
		int ok;

		if (!e)
			return 0;
		if ((p->tcp_flags & e->tcp_flags_mask) != e->tcp_flags_value || !fw_box_matches(e->lo, e->hi, p->key))
			continue;
		ok = rl_bucket_admits(e, p);
		slot = e->slot;
		s = bpf_map_lookup_elem(&dp_rl_stats, &slot);
		if (s) {
			if (ok)
				s->passed++;
			else
				s->dropped++;
		}
		return ok ? 0 : (int)slot + 1;
	}
	return 0;
}

#endif
