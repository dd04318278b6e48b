/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress — the XDP pipeline: parse once, classify, limit, translate (NAT) or
 * balance, leave through one accounting point.
 */
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/generation.h"
#include "lib/firewall.h"
#include "lib/fw_frag.h"
#include "lib/ratelimit.h"
#include "lib/lb.h"
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/rewrite.h"
#include "lib/nat_icmp.h"
#include "lib/nat_frag.h"
#include "lib/forward.h"
#include "lib/capture.h"

/* Copies the packet, as the program leaves it, into a capture record (capture.h). Runs
 * only while a capture runs. */
__noinline int dp_capture_xdp(struct xdp_md *ctx, const struct dp_pkt *p, __u32 verdict, __u32 reason, __u32 decider)
{
	struct dp_capture_rec *r;
	__u32 n;

	if (!ctx || !p)
		return 0;
	r = capture_reserve(p, DP_HOOK_XDP, verdict, reason, decider);
	if (!r)
		return 0;
	n = r->caplen;
	if (n > DP_CAPTURE_SNAP_MAX)
		n = DP_CAPTURE_SNAP_MAX;
	if (n == 0 || bpf_xdp_load_bytes(ctx, 0, r->data, n))
		r->caplen = 0;
	capture_submit(r);
	return 0;
}

/* The way out of the program: counts the verdict and, while a capture runs, records the
 * packet with what decided it (DP_DECIDER_*). */
static __always_inline int dp_done(struct xdp_md *ctx, const struct dp_pkt *p, enum dp_verdict verdict,
				   enum dp_reason reason, __u32 decider)
{
	if (capture_running())
		dp_capture_xdp(ctx, p, verdict, reason, decider);
	return dp_count(p, verdict, reason);
}

/* Whether the packet already has *t's address and port on t's side (a DSR flow's). */
static __always_inline int dp_unchanged(const struct dp_pkt *p, const struct dp_target *t)
{
	__u32 at = t->side == NAT_DST ? DP_FW_F_DST0 : DP_FW_F_SRC0;
	__u32 port = p->key[t->side == NAT_DST ? DP_FW_F_DPORT : DP_FW_F_SPORT];

	return p->key[at] == t->to.addr[0] && p->key[at + 1] == t->to.addr[1] && p->key[at + 2] == t->to.addr[2] &&
	       p->key[at + 3] == t->to.addr[3] && port == t->to.port;
}

/* Rewrites the packet to *t and sends it on. Returns the verdict, counted. Not inlined:
 * its frame (the FIB lookup's) would add to each caller's. */
static __noinline int dp_translate(struct xdp_md *ctx, const struct dp_pkt *p, const struct dp_target *t)
{
	__u32 decider;
	int lb;

	if (!p || !t)
		return XDP_ABORTED;
	lb = t->hop != DP_NO_HOP;
	decider = lb ? DP_DECIDER_BACKEND | t->hop : DP_DECIDER_NONE;
	if (!dp_unchanged(p, t) && nat_rewrite(ctx, p, t->side, t->to.addr, t->to.port))
		return dp_done(ctx, p, DP_VERDICT_ABORTED, DP_REASON_NONE, decider);
	return dp_done(ctx, p, dp_forward(ctx, p, lb ? lb_hop(t->hop) : 0, lb ? lb_backend_addr(t->hop) : 0, t->tag, t->egress),
		       DP_REASON_NONE, decider);
}

/* The steps after the firewall let the packet through, each a global function: the
 * verifier checks each once on its own instead of once for every path through the
 * firewall's trees (loading stays fast), and their stack frames are siblings, not a
 * chain. Firewall drops, the path under attack, never pay for the calls. */

/* Fragments and the firewall (fw_frag.h). A first fragment's verdict is remembered
 * (returns 0); a later fragment gets its first fragment's: the rule's counter slot times
 * two, plus one for drop (-1 when that is not known). Scalars, not a struct fw_match: the
 * entry program would have to keep its match on the stack, whose every byte counts. */
__noinline int dp_fw_fragment(const struct dp_pkt *p, __u32 slot, __u32 action)
{
	struct fw_match rule = { .slot = slot, .action = action };

	if (!p)
		return -1;
	if (p->frag == DP_FRAG_FIRST) {
		fw_frag_remember(p, &rule);
		return 0;
	}
	if (fw_frag_find(p, &rule))
		return -1;
	return rule.slot * 2 + (rule.action == DP_FW_DROP);
}

/* 0 when the rate limits of the generation in `slot` admit the packet; else the
 * counter slot of the limit it is over, plus one. */
__noinline int dp_over_limit(const struct dp_pkt *p, __u32 slot)
{
	return p ? rl_over(p, slot) : 0;
}

/* NAT at ingress: a packet of a connection whose entry rewrites the destination (SNAT
 * replies, DNAT), a new flow to a DNAT rule's public endpoint in the generation in
 * `slot`, or (the fast path, with `fast`) a packet of another interface's connection
 * whose entry rewrites the source (SNAT out, DNAT replies), is to be translated to *t.
 * Returns 1 for those, else 0. (The caller translates: dp_translate's frame beside this
 * one's would not fit the stack.) */
__noinline int dp_nat(const struct dp_pkt *p, __u32 slot, int fast, struct dp_target *t)
{
	struct dp_ct_key k, to;
	__u32 rule, owner = 0;
	int side;

	if (!p || !t)
		return 0;
	t->side = NAT_DST;
	t->hop = DP_NO_HOP;
	t->tag = 0;
	t->egress = 0;
	if (p->frag == DP_FRAG_LATER) {
		if (nat_frag_find(p, 0, t->to.addr, &rule))
			return 0;
		nat_count(rule, p, 0, 0);
		return 1;
	}
	if (ct_key_of(p, &k))
		return 0;
	side = nat_connection(&k, p, 0, fast, bpf_ktime_get_coarse_ns(), &to, &rule, &owner);
	switch (side) {
	case NAT_CT_OTHER:
		return 0;
	case NAT_CT_SRC: /* the fast path: out of the entry's interface, or to the stack */
		__builtin_memcpy(t->to.addr, to.src, sizeof(t->to.addr));
		t->to.port = to.sport;
		t->side = NAT_SRC;
		t->egress = owner;
		return 1;
	case NAT_CT_NONE:
		if (nat_dnat_open(&k, slot, p, &to, &rule))
			return 0;
		nat_count(rule, p, 1, 0);
	}
	__builtin_memcpy(t->to.addr, to.dst, sizeof(t->to.addr));
	t->to.port = to.dport;
	if (p->frag == DP_FRAG_FIRST)
		nat_frag_remember(p, to.dst, rule, 0);
	return 1;
}

/* An ICMP error about a connection with an entry served here (NAT's or the load
 * balancer's) is translated (nat_icmp.h) and sent on. Returns its verdict, counted; -1
 * for anything else. */
__noinline int dp_nat_icmp(struct xdp_md *ctx, const struct dp_pkt *p)
{
	if (!ctx || !p || nat_icmp_error((void *)(long)ctx->data, (void *)(long)ctx->data_end, p, 0) < 0)
		return -1;
	return dp_done(ctx, p, dp_forward(ctx, p, 0, 0, 0, 0), DP_REASON_NONE, DP_DECIDER_NONE);
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct dp_pkt pkt = {};
	struct dp_target nat;
	struct fw_match rule;
	__u32 gen, slot, decider = DP_DECIDER_NONE;
	int verdict, to_vip;

	pkt.ifindex = ctx->ingress_ifindex;
	switch (parse_packet(ctx, &pkt)) {
	case DP_PARSE_MALFORMED:
		return dp_done(ctx, &pkt, DP_VERDICT_DROP, DP_REASON_MALFORMED, DP_DECIDER_NONE);
	case DP_PARSE_NOT_IP:
		return dp_done(ctx, &pkt, DP_VERDICT_PASS, DP_REASON_NONE, DP_DECIDER_NONE);
	case DP_PARSE_IP:
		break;
	}

	gen = gen_read();
	slot = gen & DP_GEN_SLOT;
	/* A later fragment takes its first fragment's verdict when that is known; a first
	 * fragment's is remembered for the later ones. */
	verdict = pkt.frag == DP_FRAG_LATER && (gen & DP_GEN_FIREWALL) ? dp_fw_fragment(&pkt, 0, 0) : -1;
	if (verdict >= 0) {
		rule.slot = (__u32)verdict / 2;
		rule.action = verdict & 1 ? DP_FW_DROP : DP_FW_ALLOW;
	}
	if ((gen & DP_GEN_FIREWALL) && (verdict >= 0 || fw_classify(&pkt, slot, &rule))) {
		if (pkt.frag == DP_FRAG_FIRST)
			dp_fw_fragment(&pkt, rule.slot, rule.action);
		fw_count(&rule, &pkt);
		decider = DP_DECIDER_RULE | rule.slot;
		if (rule.action == DP_FW_DROP)
			return dp_done(ctx, &pkt, DP_VERDICT_DROP, DP_REASON_FIREWALL, decider);
	}
	verdict = gen & DP_GEN_RATE_LIMITS ? dp_over_limit(&pkt, slot) : 0;
	if (verdict > 0)
		return dp_done(ctx, &pkt, DP_VERDICT_DROP, DP_REASON_RATE_LIMIT, DP_DECIDER_LIMIT | (__u32)(verdict - 1));
	if (pkt.icmp_kind == DP_ICMP_ERROR) {
		verdict = dp_nat_icmp(ctx, &pkt);
		if (verdict >= 0)
			return verdict;
	} else if ((gen & (DP_GEN_NAT | DP_GEN_NAT_PEERS)) && dp_nat(&pkt, slot, !!(gen & DP_GEN_NAT_PEERS), &nat)) {
		return dp_translate(ctx, &pkt, &nat);
	}
	/* Most packets need nothing more: those to no VIP address and port of this
	 * interface, from a port no backend uses, skip the load balancer. */
	to_vip = lb_maybe_vip(&pkt);
	if (!to_vip && !lb_bit_set(&dp_lb_rports, pkt.key[DP_FW_F_SPORT]))
		return dp_done(ctx, &pkt, DP_VERDICT_PASS, DP_REASON_NONE, decider);
	/* The load balancer: packets of its connections, both ways, then new flows to a VIP. */
	verdict = lb_connection(&pkt, &nat);
	if (verdict == LB_NOT_VIP && to_vip)
		verdict = lb_open(&pkt, gen & DP_GEN_BALANCERS ? slot : DP_GEN_SLOTS, &nat);
	if (verdict == LB_FORWARD)
		return dp_translate(ctx, &pkt, &nat);
	if (verdict == LB_NO_BACKEND)
		return dp_done(ctx, &pkt, DP_VERDICT_DROP, DP_REASON_NO_BACKEND, DP_DECIDER_NONE);
	return dp_done(ctx, &pkt, DP_VERDICT_PASS, DP_REASON_NONE, decider);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
