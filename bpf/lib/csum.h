/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * csum.h — incremental Internet checksum updates (RFC 1624, eqn. 3):
 * HC' = ~(~HC + ~m + m') summed over the 16-bit words that change. The sum of
 * one's-complement words does not depend on byte order, so words are added as they
 * sit in the packet.
 */
#ifndef DP_CSUM_H
#define DP_CSUM_H

#include "common.h"

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* The change of replacing `words` 32-bit words `from` with `to`, as a sum to apply. */
static __always_inline __u32 csum_diff32(const __u32 *from, const __u32 *to, int words)
{
	__u32 acc = 0;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		acc += (~from[i] & 0xffff) + (~from[i] >> 16) + (to[i] & 0xffff) + (to[i] >> 16);
	}
	return acc;
}

static __always_inline __u32 csum_diff16(__u16 from, __u16 to)
{
	return (__u16)~from + to;
}

/* Applies a change to a checksum field. */
static __always_inline void csum_apply(__u16 *csum, __u32 change)
{
	*csum = ~csum_fold((__u16)~*csum + change);
}

#endif
