/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * tc_egress — what leaves an interface with NAT: SNAT for new flows and their packets,
 * and the source of DNAT replies, through the connection table the interface's XDP
 * program shares. Counted apart from XDP (dp_tc_stats).
 */
#include <linux/pkt_cls.h>
#include "lib/common.h"
#include "lib/parsing.h"
#include "lib/stats.h"
#include "lib/generation.h"
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/rewrite.h"
#include "lib/nat_icmp.h"
#include "lib/nat_frag.h"
#include "lib/capture.h"

/* Bytes of headers the parse wants in the skb's linear part. */
#define TC_PULL 128

/* Translates a leaving packet's source in the generation in `slot`: the entry of its
 * connection (for an ICMP error, of the connection it is about; for a later fragment,
 * its first fragment's address), or a new mapping from the first SNAT rule that takes
 * it. A global function, verified once on its own rather than once per path through the
 * parse. Returns the verdict; *reason: why it drops. */
__noinline int tc_nat(struct __sk_buff *skb, const struct dp_pkt *p, __u32 slot, __u32 *reason)
{
	struct dp_ct_key k, to;
	__u32 rule = 0, owner;
	int opened;

	if (!skb || !p || !reason)
		return DP_VERDICT_PASS;
	if (p->frag == DP_FRAG_LATER) {
		if (nat_frag_find(p, 1, to.src, &rule))
			return DP_VERDICT_PASS;
		nat_count(rule, p, 0, 0);
		return nat_rewrite_skb(skb, p, NAT_SRC, to.src, 0) ? DP_VERDICT_ABORTED : DP_VERDICT_PASS;
	}
	if (ct_key_of(p, &k)) {
		/* ICMP errors are small: the whole of one fits the linear part. */
		if (p->icmp_kind == DP_ICMP_ERROR && !bpf_skb_pull_data(skb, skb->len))
			nat_icmp_error((void *)(long)skb->data, (void *)(long)skb->data_end, p, 1);
		return DP_VERDICT_PASS;
	}
	switch (nat_connection(&k, p, 1, 0, bpf_ktime_get_coarse_ns(), &to, &rule, &owner)) {
	case NAT_CT_OTHER:
	case NAT_CT_DST:
		return DP_VERDICT_PASS;
	case NAT_CT_NONE:
		if (p->icmp_kind == DP_ICMP_ECHO_REPLY)
			return DP_VERDICT_PASS;
		opened = nat_snat_open(&k, slot, p, &to, &rule);
		if (opened == NAT_NO_RULE)
			return DP_VERDICT_PASS;
		if (opened == NAT_NO_PORT) {
			nat_count(rule, p, 0, 1);
			*reason = DP_REASON_NAT_NO_PORT;
			return DP_VERDICT_DROP;
		}
		nat_count(rule, p, 1, 0);
	}
	if (p->frag == DP_FRAG_FIRST)
		nat_frag_remember(p, to.src, rule, 1);
	return nat_rewrite_skb(skb, p, NAT_SRC, to.src, to.sport) ? DP_VERDICT_ABORTED : DP_VERDICT_PASS;
}

/* Copies the packet, as it leaves, into a capture record (capture.h). Runs only while a
 * capture runs. */
__noinline int dp_capture_tc(struct __sk_buff *skb, const struct dp_pkt *p, __u32 verdict, __u32 reason)
{
	struct dp_capture_rec *r;
	__u32 n;

	if (!skb || !p)
		return 0;
	r = capture_reserve(p, DP_HOOK_TC, verdict, reason, DP_DECIDER_NONE);
	if (!r)
		return 0;
	n = r->caplen;
	if (n > DP_CAPTURE_SNAP_MAX)
		n = DP_CAPTURE_SNAP_MAX;
	if (n == 0 || bpf_skb_load_bytes(skb, 0, r->data, n))
		r->caplen = 0;
	capture_submit(r);
	return 0;
}

/* The way out of the program: counts the verdict and, while a capture runs, records the
 * packet; returns the verdict. A function of its own: the entry's frame, under tc_nat's
 * chain of calls, has no room for what a capture needs kept across its call. */
__noinline int dp_tc_done(struct __sk_buff *skb, const struct dp_pkt *p, __u32 verdict, __u32 reason)
{
	if (!skb || !p)
		return DP_VERDICT_ABORTED;
	if (capture_running())
		dp_capture_tc(skb, p, verdict, reason);
	return dp_count_in(&dp_tc_stats, p, verdict, reason);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	__u32 verdict = DP_VERDICT_PASS;
	__u32 reason = DP_REASON_NONE;
	struct dp_pkt pkt = {};
	__u32 linear = skb->data_end - skb->data, gen;

	if (linear < TC_PULL && skb->len > linear)
		bpf_skb_pull_data(skb, skb->len < TC_PULL ? skb->len : TC_PULL);
	pkt.ifindex = skb->ifindex;
	if (parse_frame((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &pkt) == DP_PARSE_IP) {
		gen = gen_read();
		if (gen & DP_GEN_NAT)
			verdict = tc_nat(skb, &pkt, gen & DP_GEN_SLOT, &reason);
	}
	/* The compiler knows every verdict tc_nat returns and drops dp_count_in's range
	 * checks; the verifier, which checks tc_nat on its own, does not. */
	asm volatile("" : "+r"(verdict), "+r"(reason));
	return dp_tc_done(skb, &pkt, verdict, reason) == DP_VERDICT_PASS ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
