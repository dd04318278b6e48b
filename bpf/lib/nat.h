/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * nat.h — rewrites a parsed packet's destination or source address and port, with the
 * IPv4 header checksum and the TCP/UDP checksum (whose pseudo-header holds the
 * addresses) updated incrementally. An IPv4 UDP datagram without a checksum keeps none.
 */
#ifndef DP_NAT_H
#define DP_NAT_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"
#include "csum.h"

enum nat_side {
	NAT_SRC = 0,
	NAT_DST = 1,
};

/* Sets the `side` address (host-order words) and port of a TCP/UDP packet. Returns 0, or
 * -1 when its headers are out of reach (the packet is then unchanged). */
static __always_inline int nat_rewrite(struct xdp_md *ctx, const struct dp_pkt *p, enum nat_side side,
				       const __u32 *addr, __u16 port)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off, l4 = p->l4_off, change, to[4];
	__u16 *l4_csum, *l4_port, new_port = bpf_htons(port);
	__u32 *field;
	int words;

	if (l3 > DP_MAX_L4_OFF || l4 > DP_MAX_L4_OFF)
		return -1;
	/* TCP and UDP keep their ports in the same place; only the checksum moves. */
	struct udphdr *ports = data + l4;
	struct tcphdr *tcp = data + l4;

	if ((void *)(ports + 1) > end)
		return -1;
	l4_port = side == NAT_DST ? &ports->dest : &ports->source;
	if (p->key[DP_FW_F_PROTO] == IPPROTO_TCP) {
		if ((void *)(tcp + 1) > end)
			return -1;
		l4_csum = &tcp->check;
	} else if (p->key[DP_FW_F_PROTO] == IPPROTO_UDP) {
		l4_csum = &ports->check;
	} else {
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

	change = csum_diff32(field, to, words) + csum_diff16(*l4_port, new_port);
	if (p->key[DP_FW_F_PROTO] == IPPROTO_UDP && p->key[DP_FW_F_FAMILY] == 4 && *l4_csum == 0) {
		/* no checksum to keep */
	} else {
		csum_apply(l4_csum, change);
		if (p->key[DP_FW_F_PROTO] == IPPROTO_UDP && *l4_csum == 0)
			*l4_csum = 0xffff; /* RFC 768: a computed 0 is sent as all ones */
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		field[i] = to[i];
	}
	*l4_port = new_port;
	return 0;
}

#endif
