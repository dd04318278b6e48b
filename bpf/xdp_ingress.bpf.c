/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress — the XDP pipeline: parse once, classify, balance or translate, leave
 * through one accounting point.
 */
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/firewall.h"
#include "lib/ratelimit.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/forward.h"

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct dp_pkt pkt = {};
	const struct dp_fw_node *rule;
	const struct dp_lb_backend *backend;
	const struct dp_lb_endpoint *vip;
	__u32 generation, slot;

	switch (parse_packet(ctx, &pkt)) {
	case DP_PARSE_MALFORMED:
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_MALFORMED);
	case DP_PARSE_NOT_IP:
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	case DP_PARSE_IP:
		break;
	}

	/* No table: no firewall, rate limits or load balancers on this interface. */
	rule = fw_classify(&pkt, &generation);
	if (rule) {
		fw_count(rule, &pkt);
		if (rule->action == DP_FW_DROP)
			return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_FIREWALL);
		if (!rl_admit(&pkt, generation))
			return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_RATE_LIMIT);
		switch (lb_balance(&pkt, generation, &backend, &slot)) {
		case LB_NO_BACKEND:
			return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_NO_BACKEND);
		case LB_FORWARD:
			if (nat_rewrite(ctx, &pkt, NAT_DST, backend->addr, backend->port))
				return dp_count(&pkt, DP_VERDICT_ABORTED, DP_REASON_NONE);
			return dp_count(&pkt, dp_forward(ctx, &pkt, lb_hop(slot), backend->epoch), DP_REASON_NONE);
		case LB_NOT_VIP:
			break;
		}
	}

	/* Replies of load-balanced connections leave with their VIP as the source. */
	vip = lb_reply(&pkt);
	if (vip) {
		if (nat_rewrite(ctx, &pkt, NAT_SRC, vip->addr, vip->port))
			return dp_count(&pkt, DP_VERDICT_ABORTED, DP_REASON_NONE);
		return dp_count(&pkt, dp_forward(ctx, &pkt, 0, 0), DP_REASON_NONE);
	}
	return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
