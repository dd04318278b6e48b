/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress — the XDP pipeline: parse once, classify, leave through one
 * accounting point.
 */
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/firewall.h"

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct dp_pkt pkt = {};
	const struct dp_fw_node *rule;

	switch (parse_packet(ctx, &pkt)) {
	case DP_PARSE_MALFORMED:
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_MALFORMED);
	case DP_PARSE_NOT_IP:
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	case DP_PARSE_IP:
		break;
	}

	rule = fw_classify(&pkt);
	if (rule) {
		fw_count(rule, &pkt);
		if (rule->action == DP_FW_DROP)
			return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_FIREWALL);
	}
	return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
