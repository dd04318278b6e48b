/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * rewrite.h — rewrites a parsed packet's source or destination address and port (for
 * ICMP echo, the identifier) with every checksum updated incrementally: the IPv4 header
 * checksum, and the TCP, UDP or ICMPv6 checksum, whose pseudo-header holds the addresses
 * (the ICMPv4 checksum covers only the message). An IPv4 UDP datagram without a checksum
 * keeps none; options and payload are untouched.
 *
 * A later fragment of a datagram (no L4 header) gets only the address.
 *
 * Two forms: nat_rewrite writes an XDP frame directly; nat_rewrite_skb goes through the
 * skb helpers, which also handle checksums the stack left for the device to finish
 * (CHECKSUM_PARTIAL: only the pseudo-header part is in the field), as tc egress sees them.
 */
#ifndef DP_REWRITE_H
#define DP_REWRITE_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include "common.h"
#include "csum.h"

enum nat_side {
	NAT_SRC = 0,
	NAT_DST = 1,
};

#define DP_NO_HOP ((__u32)~0)

/* Where a translated packet goes: the new address and port of one side, and which
 * remembered next hop to use (a backend slot whose hop must carry `tag`, or DP_NO_HOP:
 * by destination; see forward.h). */
struct dp_target {
	struct dp_lb_endpoint to;
	__u32 side; /* enum nat_side */
	__u32 hop;
	__u32 tag;
	__u32 egress; /* redirect only out this interface (0: any), else leave it to the stack */
};

/* Where the rewrite writes in the L4 header: the checksum and the port (or identifier),
 * offsets from it; whether the pseudo-header counts. */
struct rewrite_at {
	__u32 csum;
	__u32 port;
	int pseudo;
	int udp;
};

/* -1: a protocol (or ICMP message) it does not rewrite. */
static __always_inline int rewrite_place(const struct dp_pkt *p, enum nat_side side, struct rewrite_at *at)
{
	__u32 port = side == NAT_DST ? 2 : 0;

	switch (p->key[DP_FW_F_PROTO]) {
	case IPPROTO_TCP:
		*at = (struct rewrite_at){ .csum = 16, .port = port, .pseudo = 1 };
		return 0;
	case IPPROTO_UDP:
		*at = (struct rewrite_at){ .csum = 6, .port = port, .pseudo = 1, .udp = 1 };
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (p->icmp_kind != DP_ICMP_ECHO_REQUEST && p->icmp_kind != DP_ICMP_ECHO_REPLY)
			return -1;
		*at = (struct rewrite_at){ .csum = 2, .port = 4, .pseudo = p->key[DP_FW_F_PROTO] == IPPROTO_ICMPV6 };
		return 0;
	}
	return -1;
}

/* Sets the `side` address (host-order words) and port of an XDP frame. Returns 0, or
 * -1 when its headers are out of reach (the packet is then unchanged). */
static __always_inline int nat_rewrite(struct xdp_md *ctx, const struct dp_pkt *p, enum nat_side side,
				       const __u32 *addr, __u16 port)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off, l4 = p->l4_off, change, to[4];
	__u16 *l4_csum = 0, *l4_port = 0, new_port = bpf_htons(port);
	struct rewrite_at at = {};
	__u32 *field;
	__u8 *l4h;
	int words;

	if (l3 > DP_MAX_L4_OFF || l4 > DP_MAX_L4_OFF)
		return -1;
	if (p->frag != DP_FRAG_LATER) {
		if (rewrite_place(p, side, &at))
			return -1;
		l4h = data + l4;
		l4_csum = (__u16 *)(l4h + (at.csum & 31));
		l4_port = (__u16 *)(l4h + (at.port & 7));
		if ((void *)(l4_csum + 1) > end || (void *)(l4_port + 1) > end)
			return -1;
	}

	if (p->key[DP_FW_F_FAMILY] == 4) {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > end)
			return -1;
		field = side == NAT_DST ? &ip->daddr : &ip->saddr;
		to[0] = bpf_htonl(addr[0]);
		words = 1;
		csum_apply(&ip->check, csum_diff32(field, to, 1));
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > end)
			return -1;
		field = side == NAT_DST ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
#pragma unroll
		for (int i = 0; i < 4; i++)
			to[i] = bpf_htonl(addr[i]);
		words = 4;
	}

	if (l4_csum && l4_port) {
		change = csum_diff16(*l4_port, new_port);
		if (at.pseudo)
			change += csum_diff32(field, to, words);
		if (at.udp && p->key[DP_FW_F_FAMILY] == 4 && *l4_csum == 0) {
			/* no checksum to keep */
		} else {
			csum_apply(l4_csum, change);
			if (at.udp && *l4_csum == 0)
				*l4_csum = 0xffff; /* RFC 768: a computed 0 is sent as all ones */
		}
		*l4_port = new_port;
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		field[i] = to[i];
	}
	return 0;
}

/* nat_rewrite for an skb (tc; not inlined: its buffers take stack). Returns 0, or -1
 * when a helper failed. */
static __noinline __attribute__((unused)) int nat_rewrite_skb(struct __sk_buff *skb, const struct dp_pkt *p, enum nat_side side,
					   const __u32 *addr, __u16 port)
{
	__u32 l3 = p->l3_off, l4 = p->l4_off, addr_off, size, flags;
	__be32 from[4] = {}, to[4] = {};
	__be16 old_port, new_port = bpf_htons(port);
	struct rewrite_at at = {};
	int later = p->frag == DP_FRAG_LATER;
	__s64 diff;

	if (!later && rewrite_place(p, side, &at))
		return -1;
	flags = at.udp ? BPF_F_MARK_MANGLED_0 : 0;
	if (p->key[DP_FW_F_FAMILY] == 4) {
		addr_off = l3 + (side == NAT_DST ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
		size = 4;
	} else {
		addr_off = l3 + (side == NAT_DST ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));
		size = 16;
	}
#pragma unroll
	for (int i = 0; i < 4; i++)
		to[i] = bpf_htonl(addr[i]);
	if (bpf_skb_load_bytes(skb, addr_off, from, size))
		return -1;
	if (size == 4) {
		if (bpf_l3_csum_replace(skb, l3 + offsetof(struct iphdr, check), from[0], to[0], 4))
			return -1;
		diff = bpf_csum_diff(from, 4, to, 4, 0);
	} else {
		diff = bpf_csum_diff(from, 16, to, 16, 0);
	}
	if (diff < 0)
		return -1;
	if (!later) {
		if (bpf_skb_load_bytes(skb, l4 + at.port, &old_port, 2))
			return -1;
		if (at.pseudo && bpf_l4_csum_replace(skb, l4 + at.csum, 0, diff, flags | BPF_F_PSEUDO_HDR))
			return -1;
		if (bpf_l4_csum_replace(skb, l4 + at.csum, old_port, new_port, flags | 2) ||
		    bpf_skb_store_bytes(skb, l4 + at.port, &new_port, 2, 0))
			return -1;
	}
	return bpf_skb_store_bytes(skb, addr_off, to, size, 0) ? -1 : 0;
}

#endif
