/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * bucket.h — the token-bucket arithmetic (GCRA), with no maps and no clock: the caller
 * passes `now` (in 2^-4 ns). The kernel tests run these same functions from a harness
 * program with a clock of their own (bpf/test/bucket_harness.bpf.c).
 */
#ifndef DP_BUCKET_H
#define DP_BUCKET_H

#include <linux/types.h>
#include "xdpctl_abi.h"

/* Whether a packet of `cost` arriving at `now` fits a dimension whose TAT is `tat` and
 * whose burst spans `window`; if so, *next is the TAT after it. */
static __always_inline int rl_fits(__u64 tat, __u64 now, __u64 cost, __u64 window, __u64 *next)
{
	__u64 base = tat > now ? tat : now;

	if (base - now + cost > window)
		return 0;
	*next = base + cost;
	return 1;
}

/* Charges `cost` to the TAT at `tat`, which other CPUs may be charging too. */
static __always_inline int rl_take(__u64 *tat, __u64 now, __u64 cost, __u64 window)
{
	for (int i = 0; i < DP_RL_CAS_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat, next;

		if (!rl_fits(old, now, cost, window, &next))
			return 0;
		if (__sync_val_compare_and_swap(tat, old, next) == old)
			return 1;
	}
	return 0; /* contended beyond reason: the strict answer */
}

/* Charges a packet of `len` bytes to both dimensions of a bucket; 1 when it passes. */
static __always_inline int rl_charge(const struct dp_rl_entry *e, struct dp_rl_bucket *b, __u64 now, __u32 len)
{
	__u64 pc = e->pkt_cost, bc = ((__u64)len * e->byte_cost) >> DP_RL_BYTE_BITS, unused;

	/* Both dimensions must fit before either is charged. */
	if (pc && !rl_fits(b->pkts, now, pc, e->pkt_window, &unused))
		return 0;
	if (e->byte_cost && !rl_fits(b->bytes, now, bc, e->byte_window, &unused))
		return 0;
	if (pc && !rl_take(&b->pkts, now, pc, e->pkt_window))
		return 0;
	if (e->byte_cost && !rl_take(&b->bytes, now, bc, e->byte_window))
		return 0;
	return 1;
}

#endif
