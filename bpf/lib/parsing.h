/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * parsing.h — one pass over Ethernet, VLAN, IPv4/IPv6 and the L4 header.
 *
 * Bounds checks follow xdp-tools: a cursor that only moves forward and a
 * `ptr + 1 > data_end` test before every header read. The result is the packet key
 * of xdpctl_abi.h. Non-first fragments carry no L4 header, so their ports are
 * DP_FW_NO_PORT and never read from the payload.
 */
#ifndef DP_PARSING_H
#define DP_PARSING_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"

enum dp_parse {
	DP_PARSE_IP = 0,     /* key filled in */
	DP_PARSE_NOT_IP,     /* not IPv4/IPv6 (ARP, LLDP, ...) */
	DP_PARSE_MALFORMED,  /* truncated or inconsistent headers */
};

struct hdr_cursor {
	void *pos;
	void *end;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* The 8-byte IPv6 fragment header (linux/ipv6.h has no UAPI struct for it). */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units << 3 | M flag */
	__be32 identification;
};

#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV4_FRAG_MORE 0x2000
#define IPV6_FRAG_OFFSET_MASK 0xfff8

/* Skips Ethernet and up to DP_VLAN_MAX tags; returns the inner ethertype, host order, or
 * -1. A frame with more tags is malformed, not "not IP": the kernel strips VLAN 0 tags
 * and would deliver what lies behind them, past a firewall that never saw it. */
static __always_inline int parse_ethhdr(struct hdr_cursor *c)
{
	struct ethhdr *eth = c->pos;
	__be16 proto;

	if ((void *)(eth + 1) > c->end)
		return -1;
	c->pos = eth + 1;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < DP_VLAN_MAX; i++) {
		struct vlan_hdr *vlan = c->pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > c->end)
			return -1;
		proto = vlan->encapsulated_proto;
		c->pos = vlan + 1;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return -1;
	return bpf_ntohs(proto);
}

/* IPv4 with options. Returns the L4 protocol, or -1 when malformed. */
/* `room`: bytes of the frame from the IP header on, which may run past c->end (an skb at
 * tc holds only its headers in the part a program reads directly). */
static __always_inline int parse_ipv4(struct hdr_cursor *c, struct dp_pkt *p, int *l4_present, __u32 room)
{
	struct iphdr *ip = c->pos;
	__u32 hdr_len, tot_len;

	if ((void *)(ip + 1) > c->end || ip->version != 4)
		return -1;
	hdr_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (hdr_len < sizeof(*ip) || tot_len < hdr_len || tot_len > room)
		return -1;

	p->key[DP_FW_F_SRC0] = bpf_ntohl(ip->saddr);
	p->key[DP_FW_F_DST0] = bpf_ntohl(ip->daddr);
	p->key[DP_FW_F_FAMILY] = 4;
	*l4_present = !(ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK));
	if (ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK | IPV4_FRAG_MORE)) {
		p->frag = *l4_present ? DP_FRAG_FIRST : DP_FRAG_LATER;
		p->frag_id = bpf_ntohs(ip->id);
	}
	c->pos += hdr_len;
	return ip->protocol;
}

static __always_inline void copy_ipv6_addr(__u32 *dst, const struct in6_addr *a)
{
#pragma unroll
	for (int i = 0; i < 4; i++)
		dst[i] = bpf_ntohl(a->in6_u.u6_addr32[i]);
}

/* IPv6 and a bounded walk over extension headers. Returns the L4 protocol, or -1. */
static __always_inline int parse_ipv6(struct hdr_cursor *c, struct dp_pkt *p, int *l4_present, __u32 room)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) > c->end || ip6->version != 6)
		return -1;
	if (sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > room)
		return -1;
	copy_ipv6_addr(&p->key[DP_FW_F_SRC0], &ip6->saddr);
	copy_ipv6_addr(&p->key[DP_FW_F_DST0], &ip6->daddr);
	p->key[DP_FW_F_FAMILY] = 6;
	c->pos = ip6 + 1;
	nexthdr = ip6->nexthdr;
	*l4_present = 1;

#pragma unroll
	for (int i = 0; i < DP_IPV6_EXT_MAX; i++) {
		struct ipv6_opt_hdr *opt = c->pos;
		struct ipv6_frag_hdr *frag = c->pos;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_MH:
			if ((void *)(opt + 1) > c->end)
				return -1;
			nexthdr = opt->nexthdr;
			c->pos += (opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(opt + 1) > c->end)
				return -1;
			nexthdr = opt->nexthdr;
			c->pos += (opt->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(frag + 1) > c->end)
				return -1;
			nexthdr = frag->nexthdr;
			c->pos = frag + 1;
			p->frag_id = bpf_ntohl(frag->identification);
			if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK)) {
				p->frag = DP_FRAG_LATER;
				*l4_present = 0;
				return nexthdr;
			}
			if (frag->frag_off & bpf_htons(1)) /* M: more to come */
				p->frag = DP_FRAG_FIRST;
			break;
		default:
			return nexthdr;
		}
	}
	return -1; /* a longer chain than DP_IPV6_EXT_MAX */
}

/* Reads the ports of TCP/UDP and checks the minimal header of ICMP/ICMPv6. */
static __always_inline int parse_l4(struct hdr_cursor *c, struct dp_pkt *p, int proto)
{
	struct tcphdr *tcp = c->pos;
	struct udphdr *udp = c->pos;
	__u8 *icmp = c->pos;

	switch (proto) {
	case IPPROTO_TCP:
		if ((void *)(tcp + 1) > c->end || tcp->doff < sizeof(*tcp) / 4)
			return -1;
		p->key[DP_FW_F_SPORT] = bpf_ntohs(tcp->source);
		p->key[DP_FW_F_DPORT] = bpf_ntohs(tcp->dest);
		p->tcp_flags = ((__u8 *)tcp)[13];
		return 0;
	case IPPROTO_UDP:
		if ((void *)(udp + 1) > c->end)
			return -1;
		p->key[DP_FW_F_SPORT] = bpf_ntohs(udp->source);
		p->key[DP_FW_F_DPORT] = bpf_ntohs(udp->dest);
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((void *)(icmp + 4) > c->end) /* type, code, checksum */
			return -1;
		if (proto == IPPROTO_ICMP ? icmp[0] == 3 || icmp[0] == 11 || icmp[0] == 12 : icmp[0] >= 1 && icmp[0] <= 4) {
			p->icmp_kind = DP_ICMP_ERROR;
			return 0;
		}
		if ((void *)(icmp + 6) > c->end) /* not an echo with its identifier */
			return 0;
		if (icmp[0] == (proto == IPPROTO_ICMP ? 8 : 128))
			p->icmp_kind = DP_ICMP_ECHO_REQUEST;
		else if (icmp[0] == (proto == IPPROTO_ICMP ? 0 : 129))
			p->icmp_kind = DP_ICMP_ECHO_REPLY;
		p->icmp_id = bpf_ntohs(*(__be16 *)(icmp + 4));
		return 0;
	}
	return 0;
}

/* The one parse of a frame of `len` bytes whose headers lie from `data` to `end`. */
static __always_inline enum dp_parse parse_frame(void *data, void *end, __u32 len, struct dp_pkt *p)
{
	struct hdr_cursor c = { .pos = data, .end = end };
	int ethertype, proto, l4_present = 0;
	__u32 room;

	p->len = len;
	p->key[DP_FW_F_SPORT] = DP_FW_NO_PORT;
	p->key[DP_FW_F_DPORT] = DP_FW_NO_PORT;

	ethertype = parse_ethhdr(&c);
	if (ethertype < 0)
		return DP_PARSE_MALFORMED;
	p->l3_off = c.pos - data;
	room = len > p->l3_off ? len - p->l3_off : 0;
	if (ethertype == ETH_P_IP)
		proto = parse_ipv4(&c, p, &l4_present, room);
	else if (ethertype == ETH_P_IPV6)
		proto = parse_ipv6(&c, p, &l4_present, room);
	else
		return DP_PARSE_NOT_IP;
	if (proto < 0)
		return DP_PARSE_MALFORMED;

	p->key[DP_FW_F_PROTO] = proto;
	p->l4_off = c.pos - data;
	if (l4_present && parse_l4(&c, p, proto) < 0)
		return DP_PARSE_MALFORMED;
	return DP_PARSE_IP;
}

/* The one parse of an XDP frame. */
static __always_inline enum dp_parse parse_packet(struct xdp_md *ctx, struct dp_pkt *p)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	return parse_frame(data, end, end - data, p);
}

#endif
