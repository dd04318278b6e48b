/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The traffic generator's program for many sources: like xdp_tx, but each frame's IPv4
 * source address becomes base + (n mod count) for the n-th frame, so a flood comes from
 * `count` addresses in turn. The IPv4 checksum is left stale: the program under test
 * does not check it, and the frames are counted, not delivered.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct gen_sources {
	__u32 base;  /* host order */
	__u32 count;
	__u64 next;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_sources);
} gen_sources SEC(".maps");

SEC("xdp")
int xdp_tx_sources(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 zero = 0;
	struct gen_sources *g = bpf_map_lookup_elem(&gen_sources, &zero);

	if (!g || (void *)(ip + 1) > end || !g->count)
		return XDP_TX;
	ip->saddr = bpf_htonl(g->base + (__u32)(g->next++ % g->count));
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
