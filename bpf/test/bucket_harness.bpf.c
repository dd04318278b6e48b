/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * A harness for the kernel tests: runs bucket.h's rl_charge on a case carried in the
 * test frame (limit parameters, bucket state, the time and the packet length) and writes
 * the outcome back into the frame. The clock is the test's; production code has no hook.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "../lib/bucket.h"

/* The frame's layout; Tests/XDPCtlKernelTests/BucketTests.swift writes and reads it. */
struct bucket_case {
	struct dp_rl_entry entry;
	struct dp_rl_bucket bucket;
	__u64 now; /* 2^-4 ns */
	__u32 len;
	__u32 passed;
};

SEC("xdp")
int bucket_harness(struct xdp_md *ctx)
{
	struct bucket_case *c = (void *)(long)ctx->data;
	struct dp_rl_bucket b; /* atomics work on the stack, not on packet data */

	if ((void *)(c + 1) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	b = c->bucket;
	c->passed = rl_charge(&c->entry, &b, c->now, c->len);
	c->bucket = b;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
