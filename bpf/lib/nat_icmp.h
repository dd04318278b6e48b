/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * nat_icmp.h — ICMP errors about translated connections (destination unreachable, time
 * exceeded, parameter problem, packet too big): the quoted packet names the connection,
 * and the error is translated as its packets are, outer and quoted headers both, with
 * every checksum, so PMTU discovery and traceroute work through NAT.
 *
 * An error about a packet X travels against X. The packets that answer X have the key
 * reverse(X); when that key is a connection's entry e served on this hook, the error's
 * outer header gets e's rewrite (its destination, or its source), and the quote the
 * opposite side: X becomes the packet before translation, reverse(e.to). NAT's and the
 * load balancer's connections alike.
 * Works on a linear frame from `data` to `end` (an XDP frame, or a pulled skb: ICMP
 * errors are small and their checksums complete).
 */
#ifndef DP_NAT_ICMP_H
#define DP_NAT_ICMP_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include "common.h"
#include "csum.h"
#include "conntrack.h"
#include "nat.h"
#include "rewrite.h"

/* Whether entry e serves the hook (`tc`: egress, else XDP ingress) of interface `ifindex`. */
static __always_inline int nat_icmp_serves(const struct dp_ct_entry *e, int tc, __u32 ifindex)
{
	if (e->kind == DP_CT_LB)
		return !tc;
	return e->rewrites_src == tc && e->ifindex == ifindex;
}

/* Translates the ICMP error parsed in *p if it quotes a packet of a connection with an
 * entry served on this hook (`tc`: egress, else XDP ingress). Returns 0 (a NAT rule's
 * error is counted), or -1 when it is about no such connection (then nothing was
 * changed). Not inlined: its keys take stack. */
static __noinline __attribute__((unused)) int nat_icmp_error(void *data, void *end, const struct dp_pkt *p, int tc)
{
	enum nat_side side;
	__u32 l3 = p->l3_off, l4 = p->l4_off, change = 0, d_addr, to[4], *outer, *inner_addr;
	int v4 = p->key[DP_FW_F_FAMILY] == 4, words = v4 ? 1 : 4, pseudo;
	__u16 *icmp_csum, *inner_port, *inner_csum, before, new_port;
	struct dp_ct_entry *e;
	struct dp_ct_key k = {};
	__u8 *icmp, *quote, *ql4, proto;
	__u32 ihl;

	if (l3 > DP_MAX_L4_OFF || l4 > DP_MAX_L4_OFF)
		return -1;
	icmp = data + l4;
	quote = icmp + 8;
	icmp_csum = (__u16 *)(icmp + 2);
	if ((void *)(icmp_csum + 1) > end)
		return -1;
	if (v4) {
		struct iphdr *ip = (void *)quote;

		if ((void *)(ip + 1) > end || ip->ihl < 5 || (ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)))
			return -1;
		ihl = (ip->ihl * 4) & 63;
		proto = ip->protocol;
		k.dst[0] = bpf_ntohl(ip->saddr);
		k.src[0] = bpf_ntohl(ip->daddr);
	} else {
		struct ipv6hdr *ip6 = (void *)quote;

		if ((void *)(ip6 + 1) > end)
			return -1;
		ihl = sizeof(*ip6);
		proto = ip6->nexthdr;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			k.dst[i] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[i]);
			k.src[i] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[i]);
		}
	}
	ql4 = quote + ihl;
	if ((void *)(ql4 + 8) > end)
		return -1;
	k.proto = proto;
	k.family = v4 ? 4 : 6;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		k.dport = bpf_ntohs(*(__be16 *)ql4);
		k.sport = bpf_ntohs(*(__be16 *)(ql4 + 2));
		inner_port = (__u16 *)ql4; /* the source port; the destination's when the entry rewrites a source */
		inner_csum = (__u16 *)(ql4 + (proto == IPPROTO_TCP ? 16 : 6));
		pseudo = 1;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		k.sport = k.dport = bpf_ntohs(*(__be16 *)(ql4 + 4));
		inner_port = (__u16 *)(ql4 + 4);
		inner_csum = (__u16 *)(ql4 + 2);
		pseudo = proto == IPPROTO_ICMPV6;
		break;
	default:
		return -1;
	}

	/* Any entry will do, live or not: an error about a connection just expired harms
	 * nobody, and skipping the liveness check (which may read the other entry) keeps
	 * this frame off the deepest chain of calls. */
	e = bpf_map_lookup_elem(&dp_ct, &k);
	if (!e)
		e = bpf_map_lookup_elem(&dp_ct_new, &k);
	if (!e || !nat_icmp_serves(e, tc, p->ifindex))
		return -1;
	side = e->rewrites_src ? NAT_SRC : NAT_DST;
	if (side == NAT_SRC && (proto == IPPROTO_TCP || proto == IPPROTO_UDP))
		inner_port++;
	/* The outer side gets the entry's address; the quote's other side gets it too, with
	 * the entry's port. */
	{
		const __u32 *a = side == NAT_DST ? e->to.dst : e->to.src;

#pragma unroll
		for (int i = 0; i < 4; i++)
			to[i] = bpf_htonl(a[i]);
		new_port = bpf_htons(side == NAT_DST ? e->to.dport : e->to.sport);
	}
	if (v4) {
		struct iphdr *ip = data + l3, *qip = (void *)quote;

		if ((void *)(ip + 1) > end || (void *)(qip + 1) > end)
			return -1;
		outer = side == NAT_DST ? &ip->daddr : &ip->saddr;
		inner_addr = side == NAT_DST ? &qip->saddr : &qip->daddr;
		d_addr = csum_diff32(inner_addr, to, 1);
		before = qip->check;
		csum_apply(&qip->check, d_addr);
		change += csum_diff16(before, qip->check);
		csum_apply(&ip->check, csum_diff32(outer, to, 1));
	} else {
		struct ipv6hdr *ip6 = data + l3, *qip6 = (void *)quote;

		if ((void *)(ip6 + 1) > end || (void *)(qip6 + 1) > end)
			return -1;
		outer = side == NAT_DST ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
		inner_addr = side == NAT_DST ? qip6->saddr.in6_u.u6_addr32 : qip6->daddr.in6_u.u6_addr32;
		d_addr = csum_diff32(inner_addr, to, 4);
		change += csum_diff32(outer, to, 4); /* ICMPv6: the pseudo-header holds the outer addresses */
	}
	change += d_addr + csum_diff16(*inner_port, new_port);
	/* The quoted L4 checksum, when the quote holds it (a UDP one of 0 stays 0). */
	if ((void *)(inner_csum + 1) <= end && !(proto == IPPROTO_UDP && *inner_csum == 0)) {
		before = *inner_csum;
		csum_apply(inner_csum, (pseudo ? d_addr : 0) + csum_diff16(*inner_port, new_port));
		if (proto == IPPROTO_UDP && *inner_csum == 0)
			*inner_csum = 0xffff;
		change += csum_diff16(before, *inner_csum);
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		inner_addr[i] = to[i];
		outer[i] = to[i];
	}
	*inner_port = new_port;
	csum_apply(icmp_csum, change);
	if (e->kind != DP_CT_LB)
		nat_count(e->rule, p, 0, 0);
	return 0;
}

#endif
