/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * fw_frag.h — firewall verdicts of fragmented datagrams: a first fragment's verdict,
 * remembered, decides the later ones, which carry no ports (see xdpctl_abi.h, "Firewall
 * verdicts of fragmented datagrams").
 */
#ifndef DP_FW_FRAG_H
#define DP_FW_FRAG_H

#include "common.h"
#include "frag.h"
#include "firewall.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DP_FW_FRAG_MAX);
	__type(key, struct dp_frag_key);
	__type(value, struct dp_fw_frag);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_fw_frag SEC(".maps");

/* Remembers *rule as the verdict of first fragment *p's datagram. */
static __always_inline void fw_frag_remember(const struct dp_pkt *p, const struct fw_match *rule)
{
	struct dp_fw_frag v = { .slot = rule->slot, .action = rule->action, .seen_ns = bpf_ktime_get_coarse_ns() };
	struct dp_frag_key k;

	frag_key_of(p, &k);
	bpf_map_update_elem(&dp_fw_frag, &k, &v, BPF_ANY);
}

/* The verdict of later fragment *p's datagram, into *rule; -1 when its first fragment was
 * not seen lately. */
static __always_inline int fw_frag_find(const struct dp_pkt *p, struct fw_match *rule)
{
	const struct dp_fw_frag *v;
	struct dp_frag_key k;
	__u64 now = bpf_ktime_get_coarse_ns();

	frag_key_of(p, &k);
	v = bpf_map_lookup_elem(&dp_fw_frag, &k);
	if (!v || (now > v->seen_ns && now - v->seen_ns > DP_FW_FRAG_TIMEOUT * 1000000000ULL))
		return -1;
	rule->slot = v->slot;
	rule->action = v->action;
	rule->priority = 0;
	return 0;
}

#endif
