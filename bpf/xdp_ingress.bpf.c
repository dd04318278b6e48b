/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress — the XDP pipeline: parse once, classify, balance or translate, leave
 * through one accounting point.
 */
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/generation.h"
#include "lib/firewall.h"
#include "lib/ratelimit.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/forward.h"

#define DP_NO_HOP ((__u32)~0)

/* Where a translated packet goes: the new address and port of one side, and which
 * remembered next hop to use (a backend slot whose hop must carry `tag`, or DP_NO_HOP:
 * by destination; see forward.h). */
struct dp_target {
	struct dp_lb_endpoint to;
	__u32 side; /* enum nat_side */
	__u32 hop;
	__u32 tag;
};

/* Load balancing, then reply translation: LB_FORWARD fills *t. `generation`: the slot of
 * the generation's balancers, or DP_GEN_SLOTS when it has none. */
static __always_inline int dp_balance(const struct dp_pkt *p, __u32 generation, struct dp_target *t)
{
	const struct dp_lb_backend *backend;
	const struct dp_lb_endpoint *vip;
	enum lb_step step;

	if (!p || !t)
		return LB_NOT_VIP;
	step = lb_balance(p, generation, &backend, &t->hop);
	if (step == LB_FORWARD) {
		__builtin_memcpy(t->to.addr, backend->addr, sizeof(t->to.addr));
		t->to.port = backend->port;
		t->side = NAT_DST;
		t->tag = backend->epoch;
		return LB_FORWARD;
	}
	if (step == LB_NO_BACKEND)
		return LB_NO_BACKEND;
	/* Replies of load-balanced connections leave with their VIP as the source. */
	vip = lb_reply(p);
	if (!vip)
		return LB_NOT_VIP;
	t->to = *vip;
	t->side = NAT_SRC;
	t->hop = DP_NO_HOP;
	t->tag = 0;
	return LB_FORWARD;
}

/* Rewrites the packet to *t and sends it on. Returns the verdict, counted. */
static __always_inline int dp_translate(struct xdp_md *ctx, const struct dp_pkt *p, const struct dp_target *t)
{
	if (!p || !t)
		return XDP_ABORTED;
	if (nat_rewrite(ctx, p, t->side, t->to.addr, t->to.port))
		return dp_count(p, DP_VERDICT_ABORTED, DP_REASON_NONE);
	return dp_count(p, dp_forward(ctx, p, t->hop == DP_NO_HOP ? 0 : lb_hop(t->hop), t->tag), DP_REASON_NONE);
}

/* Everything after the firewall let the packet through: rate limits, then the load
 * balancer and reply translation. A global function, so the verifier checks it once on
 * its own instead of once for every path through the firewall's trees (loading stays
 * fast); firewall drops, the path under attack, never pay for the call. `gen`: the
 * packet's generation word (see generation.h). Returns the verdict, counted. */
__noinline int dp_admitted(struct xdp_md *ctx, const struct dp_pkt *p, __u32 gen)
{
	struct dp_target target = {};
	__u32 slot = gen & DP_GEN_SLOT;

	if (!p)
		return XDP_ABORTED;
	if ((gen & DP_GEN_RATE_LIMITS) && !rl_admit(p, slot))
		return dp_count(p, DP_VERDICT_DROP, DP_REASON_RATE_LIMIT);
	switch (dp_balance(p, gen & DP_GEN_BALANCERS ? slot : DP_GEN_SLOTS, &target)) {
	case LB_FORWARD:
		return dp_translate(ctx, p, &target);
	case LB_NO_BACKEND:
		return dp_count(p, DP_VERDICT_DROP, DP_REASON_NO_BACKEND);
	}
	return dp_count(p, DP_VERDICT_PASS, DP_REASON_NONE);
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct dp_pkt pkt = {};
	struct fw_match rule;
	__u32 gen;

	switch (parse_packet(ctx, &pkt)) {
	case DP_PARSE_MALFORMED:
		return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_MALFORMED);
	case DP_PARSE_NOT_IP:
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	case DP_PARSE_IP:
		break;
	}

	gen = gen_read();
	if ((gen & DP_GEN_FIREWALL) && fw_classify(&pkt, gen & DP_GEN_SLOT, &rule)) {
		fw_count(&rule, &pkt);
		if (rule.action == DP_FW_DROP)
			return dp_count(&pkt, DP_VERDICT_DROP, DP_REASON_FIREWALL);
	}
	/* Most packets need nothing more: no rate limits here, and ports that no VIP of this
	 * interface and no backend use. They skip the call. */
	if (!(gen & DP_GEN_RATE_LIMITS) && !lb_port_listed(&dp_lb_vports, pkt.key[DP_FW_F_DPORT]) &&
	    !lb_port_listed(&dp_lb_rports, pkt.key[DP_FW_F_SPORT]))
		return dp_count(&pkt, DP_VERDICT_PASS, DP_REASON_NONE);
	return dp_admitted(ctx, &pkt, gen);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
