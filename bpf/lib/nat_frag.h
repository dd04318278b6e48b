/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * nat_frag.h — fragments of translated datagrams: the first fragment's translation,
 * remembered, serves the later ones, which carry no ports (see xdpctl_abi.h, "Fragments").
 */
#ifndef DP_NAT_FRAG_H
#define DP_NAT_FRAG_H

#include "common.h"
#include "frag.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_NAT_FRAG_MAX);
	__type(key, struct dp_frag_key);
	__type(value, struct dp_frag_xlate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_nat_frag SEC(".maps");

/* Remembers that the datagram of first fragment *p gets `addr` (`src`: as its source).
 * Not inlined, as the lookup below: the key takes stack. */
static __noinline __attribute__((unused)) void nat_frag_remember(const struct dp_pkt *p, const __u32 *addr, __u32 rule,
								 int src)
{
	struct dp_frag_xlate x = {};
	struct dp_frag_key k;

	frag_key_of(p, &k);
	__builtin_memcpy(x.addr, addr, sizeof(x.addr));
	x.rule = rule;
	x.rewrites_src = src;
	x.seen_ns = bpf_ktime_get_coarse_ns();
	bpf_map_update_elem(&dp_nat_frag, &k, &x, BPF_ANY);
}

/* The address a later fragment *p gets on the side a hook rewrites (`src`), copied to
 * addr and its rule to *rule; -1 when its first fragment was not translated here lately. */
static __noinline __attribute__((unused)) int nat_frag_find(const struct dp_pkt *p, int src, __u32 *addr, __u32 *rule)
{
	const struct dp_frag_xlate *x;
	struct dp_frag_key k;
	__u64 now = bpf_ktime_get_coarse_ns();

	frag_key_of(p, &k);
	x = bpf_map_lookup_elem(&dp_nat_frag, &k);
	if (!x || x->rewrites_src != src || (now > x->seen_ns && now - x->seen_ns > DP_NAT_FRAG_TIMEOUT * 1000000000ULL))
		return -1;
	__builtin_memcpy(addr, x->addr, sizeof(x->addr));
	*rule = x->rule;
	return 0;
}

#endif
