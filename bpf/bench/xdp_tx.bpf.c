/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The traffic generator's program: run under BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES, it sends every frame out of the interface named in the
 * test context, so a veth pair carries it to the program under test on the peer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
