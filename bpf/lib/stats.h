/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* stats.h — the one accounting point every packet leaves through, one per program. */
#ifndef DP_STATS_H
#define DP_STATS_H

#include "common.h"

struct dp_stats_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_if_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
};

struct dp_stats_map dp_stats_v4 SEC(".maps"); /* XDP ingress */
struct dp_stats_map dp_tc_stats SEC(".maps"); /* tc egress */

/* Counts the packet in `map` under its verdict (and reason, for drops); returns the verdict. */
static __always_inline __u32 dp_count_in(void *map, const struct dp_pkt *p, __u32 verdict, __u32 reason)
{
	__u32 zero = 0;
	struct dp_if_stats *s = bpf_map_lookup_elem(map, &zero);

	if (verdict >= DP_VERDICT__MAX)
		verdict = DP_VERDICT_ABORTED;
	if (reason >= DP_REASON__MAX)
		reason = DP_REASON_NONE;
	if (s) {
		s->rx_packets++;
		s->rx_bytes += p->len;
		s->verdict[verdict]++;
		if (verdict == DP_VERDICT_DROP)
			s->drop_reason[reason]++;
	}
	return verdict;
}

/* Counts an XDP verdict; returns it, an XDP action. */
static __always_inline int dp_count(const struct dp_pkt *p, enum dp_verdict verdict, enum dp_reason reason)
{
	return dp_count_in(&dp_stats_v4, p, verdict, reason);
}

#endif
