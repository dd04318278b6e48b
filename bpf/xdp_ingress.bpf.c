/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress — the XDP pipeline: parse once, classify, leave through one
 * accounting point.
 */
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/firewall.h"
#include "lib/ratelimit.h"

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct dp_pkt pkt = {};
	const struct dp_fw_node *rule;
	__u32 generation;

	switch (parse_packet(ctx, &pkt)) {
	case DP_PARSE_MALFORMED:
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_MALFORMED);
	case DP_PARSE_NOT_IP:
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	case DP_PARSE_IP:
		break;
	}

	/* No table: no firewall and no rate limits. */
	rule = fw_classify(&pkt, &generation);
	if (!rule)
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	fw_count(rule, &pkt);
	if (rule->action == DP_FW_DROP)
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_FIREWALL);
	if (!rl_admit(&pkt, generation))
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_RATE_LIMIT);
	return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
