/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * frag.h — the key of a fragmented datagram, (src, dst, id, protocol, family), under
 * which the firewall and NAT remember what their first fragment got.
 */
#ifndef DP_FRAG_H
#define DP_FRAG_H

#include "common.h"

static __always_inline void frag_key_of(const struct dp_pkt *p, struct dp_frag_key *k)
{
	__builtin_memcpy(k->src, &p->key[DP_FW_F_SRC0], sizeof(k->src));
	__builtin_memcpy(k->dst, &p->key[DP_FW_F_DST0], sizeof(k->dst));
	k->id = p->frag_id;
	k->proto = p->key[DP_FW_F_PROTO];
	k->family = p->key[DP_FW_F_FAMILY];
	k->pad[0] = k->pad[1] = 0;
}

#endif
