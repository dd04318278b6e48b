/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * forward.h — sends a packet on toward its (rewritten) destination: a FIB lookup in the
 * kernel's routing and neighbour tables, then new MAC addresses, one less TTL and
 * XDP_REDIRECT out of the egress interface. When the lookup cannot finish (no
 * neighbour entry yet, a route the FIB helper does not handle, TTL running out), the
 * packet goes up the kernel stack, which forwards it (or answers with ICMP).
 */
#ifndef DP_FORWARD_H
#define DP_FORWARD_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include "common.h"
#include "csum.h"

#define DP_AF_INET 2
#define DP_AF_INET6 10

/* Returns the verdict: DP_VERDICT_REDIRECT, or DP_VERDICT_PASS for the stack. */
static __always_inline enum dp_verdict dp_forward(struct xdp_md *ctx, const struct dp_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = data;
	__u32 l3 = p->l3_off;

	if ((void *)(eth + 1) > end || l3 > DP_MAX_L4_OFF)
		return DP_VERDICT_PASS;
	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = p->key[DP_FW_F_PROTO];
	if (p->key[DP_FW_F_FAMILY] == 4) {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return DP_VERDICT_PASS;
		fib.family = DP_AF_INET;
		fib.tos = ip->tos;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
		if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
			return DP_VERDICT_PASS;
		/* TTL - 1, with the checksum change of the 16-bit word it shares with protocol */
		__u16 *ttl_word = (__u16 *)&ip->ttl, before = *ttl_word;

		ip->ttl--;
		csum_apply(&ip->check, csum_diff16(before, *ttl_word));
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return DP_VERDICT_PASS;
		fib.family = DP_AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		fib.tot_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
		if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
			return DP_VERDICT_PASS;
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

#endif
