/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * bucket.h — the token-bucket arithmetic (GCRA in fixed point), with no maps and no
 * clock: the caller passes `now`. The kernel tests run these same functions from a
 * harness program with a clock of their own (bpf/test/bucket_harness.bpf.c).
 */
#ifndef DP_BUCKET_H
#define DP_BUCKET_H

#include <linux/types.h>
#include "xdpctl_abi.h"

#define DP_RL_FRAC_MASK ((1ULL << DP_RL_FRAC_BITS) - 1)

/*
 * rl_fits — whether a packet of `cost` (2^-16 ns) arriving at `now` fits a bucket
 * dimension whose state is `t` and whose burst spans `window`; if so, `next` is the
 * state after it. Pure arithmetic: the kernel tests drive it with their own clock.
 */
static __always_inline int rl_fits(const struct dp_rl_tat *t, __u64 now, __u64 cost, __u64 window,
				   struct dp_rl_tat *next)
{
	__u64 ns = now, frac = 0;

	if (t->ns > now || (t->ns == now && t->frac)) {
		ns = t->ns;
		frac = t->frac & DP_RL_FRAC_MASK;
	}
	if (((ns - now) << DP_RL_FRAC_BITS) + frac + cost > window)
		return 0;
	frac += cost & DP_RL_FRAC_MASK;
	next->ns = ns + (cost >> DP_RL_FRAC_BITS) + (frac >> DP_RL_FRAC_BITS);
	next->frac = frac & DP_RL_FRAC_MASK;
	return 1;
}

/* Charges a packet of `len` bytes to both dimensions of a bucket; 1 when it passes. */
static __always_inline int rl_charge(const struct dp_rl_entry *e, struct dp_rl_tat *pkts, struct dp_rl_tat *bytes,
				     __u64 now, __u32 len)
{
	struct dp_rl_tat np = *pkts, nb = *bytes;

	if (e->pkt_cost && !rl_fits(pkts, now, e->pkt_cost, e->pkt_window, &np))
		return 0;
	if (e->byte_cost && !rl_fits(bytes, now, (__u64)len * e->byte_cost, e->byte_window, &nb))
		return 0;
	*pkts = np;
	*bytes = nb;
	return 1;
}

#endif
