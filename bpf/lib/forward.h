/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * forward.h — sends a packet on toward its (rewritten) destination: the next hop from
 * the kernel's routing and neighbour tables (bpf_fib_lookup, remembered for a while, see
 * xdpctl_abi.h), then new MAC addresses, one less TTL and
 * XDP_REDIRECT out of the egress interface. When the lookup cannot finish (no
 * neighbour entry yet, a route the FIB helper does not handle, a packet over the MTU,
 * TTL running out), the packet goes up the kernel stack, which forwards it (or answers
 * with ICMP).
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_FWD_CACHE_ENTRIES);
	__type(key, struct dp_fwd_key);
	__type(value, struct dp_fwd_hop);
} dp_fwd_cache SEC(".maps");

/* Asks the FIB for the next hop of the packet (of IP length `len`), toward `to`
 * (host-order words; null: the packet's destination); fills *hop. Returns 0 on success.
 * Not inlined: its request takes 64 bytes of stack, and it runs only when the
 * remembered hop is stale. */
static __noinline int fwd_lookup(struct xdp_md *ctx, const struct dp_pkt *p, __u32 len, const __u32 *to,
				      struct dp_fwd_hop *hop)
{
	void *end = (void *)(long)ctx->data_end;
	void *l3;

	if (!p || p->l3_off > DP_MAX_L4_OFF)
		return -1;
	l3 = (void *)(long)ctx->data + p->l3_off;
	struct bpf_fib_lookup fib = {};

	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = p->key[DP_FW_F_PROTO];
	fib.tot_len = len;
	if (p->key[DP_FW_F_FAMILY] == 4) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > end)
			return -1;
		fib.family = DP_AF_INET;
		fib.tos = ip->tos;
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = to ? bpf_htonl(to[0]) : ip->daddr;
	} else {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		fib.family = DP_AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
		if (to) {
			for (int i = 0; i < 4; i++)
				fib.ipv6_dst[i] = bpf_htonl(to[i]);
		} else {
			__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
		}
	}
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	hop->ifindex = fib.ifindex;
	__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
	return 0;
}

/* Sends the packet on. `slot`: where its next hop is remembered, a per-CPU map value
 * whose tag must equal `tag`, and `to` the address it is the hop toward (host-order
 * words; null: the packet's destination); null slot: dp_fwd_cache, by destination.
 * `egress`: the only interface it may be redirected out of (0: any). Returns the
 * verdict: DP_VERDICT_REDIRECT, or DP_VERDICT_PASS for the stack. */
static __always_inline enum dp_verdict dp_forward(struct xdp_md *ctx, const struct dp_pkt *p,
						  struct dp_fwd_hop *slot, const __u32 *to, __u32 tag, __u32 egress)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct dp_fwd_key key = {};
	struct dp_fwd_hop *hop, fresh = {};
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	__u32 len, l3 = p->l3_off;
	__u64 now;

	if ((void *)(eth + 1) > end || l3 > DP_MAX_L4_OFF)
		return DP_VERDICT_PASS;
	ip = data + l3;
	ip6 = data + l3;
	if (p->key[DP_FW_F_FAMILY] == 4) {
		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return DP_VERDICT_PASS;
		len = bpf_ntohs(ip->tot_len);
	} else {
		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return DP_VERDICT_PASS;
		len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	}
	if (!slot) {
		/* the destination as the packet now has it (NAT may have rewritten the key's) */
		if (p->key[DP_FW_F_FAMILY] == 4)
			key.addr[0] = ip->daddr;
		else
			__builtin_memcpy(key.addr, &ip6->daddr, sizeof(key.addr));
		key.family = p->key[DP_FW_F_FAMILY];
	}
	now = bpf_jiffies64();
	hop = slot ? slot : bpf_map_lookup_elem(&dp_fwd_cache, &key);
	if (!hop || hop->tag != tag || now > hop->expires || len > hop->max_len) {
		if (fwd_lookup(ctx, p, len, slot ? to : 0, &fresh))
			return DP_VERDICT_PASS;
		fresh.tag = tag;
		fresh.max_len = hop && hop->tag == tag && now <= hop->expires && hop->max_len > len ? hop->max_len : len;
		fresh.expires = now + DP_FWD_CACHE_TICKS;
		if (slot)
			*slot = fresh; /* this CPU's own copy */
		else
			bpf_map_update_elem(&dp_fwd_cache, &key, &fresh, BPF_ANY);
		hop = &fresh;
	}
	if (egress && hop->ifindex != egress)
		return DP_VERDICT_PASS;

	if (p->key[DP_FW_F_FAMILY] == 4) {
		/* TTL - 1, with the checksum change of the 16-bit word it shares with protocol */
		__u16 *ttl_word = (__u16 *)&ip->ttl, before = *ttl_word;

		ip->ttl--;
		csum_apply(&ip->check, csum_diff16(before, *ttl_word));
	} else {
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, hop->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, hop->smac, ETH_ALEN);
	return bpf_redirect(hop->ifindex, 0);
}

#endif
