/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* common.h — includes and the per-packet context every stage of the pipeline reads. */
#ifndef DP_COMMON_H
#define DP_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdpctl_abi.h"

/* What one parse of a packet yields; later stages only read it. */
struct dp_pkt {
	__u32 key[DP_FW_NFIELDS]; /* the classification key, see xdpctl_abi.h */
	__u32 len;                /* frame length in bytes */
	__u16 l3_off;             /* offsets from the frame's start of the IP header */
	__u16 l4_off;             /* and of the L4 header (valid when the key has ports) */
	__u16 icmp_id;            /* ICMP/ICMPv6 echo: the identifier (host order) */
	__u8 tcp_flags;           /* TCP header flags byte (CWR..FIN); 0 for anything else */
	__u8 icmp_kind;           /* enum dp_icmp_kind */
	__u8 frag;                /* enum dp_frag */
	__u32 frag_id;            /* a fragment's identification (IPv4: 16 bits), host order */
	__u32 ifindex;            /* the interface the hook runs on */
};

enum dp_frag {
	DP_FRAG_NONE = 0,
	DP_FRAG_FIRST = 1,        /* offset 0, more to come: carries the L4 header */
	DP_FRAG_LATER = 2,        /* no L4 header */
};

enum dp_icmp_kind {
	DP_ICMP_OTHER = 0,        /* not ICMP, or a message NAT does not translate */
	DP_ICMP_ECHO_REQUEST = 1,
	DP_ICMP_ECHO_REPLY = 2,
	DP_ICMP_ERROR = 3,        /* unreachable, time exceeded, parameter problem, packet too big */
};

/* Headers further into the frame than this are not rewritten (a bound for the verifier). */
#define DP_MAX_L4_OFF 512

#endif
