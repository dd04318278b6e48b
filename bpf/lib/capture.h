/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* capture.h — xdpctl capture: the filter every packet checks (one load while no capture
 * runs), the per-CPU rate bound, and the record a captured packet becomes. The hooks copy
 * the frame themselves (bpf_xdp_load_bytes, bpf_skb_load_bytes). */
#ifndef DP_CAPTURE_H
#define DP_CAPTURE_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_capture_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_capture SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_capture_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_capture_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DP_CAPTURE_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_capture_ring SEC(".maps");

/* Nonzero while a capture runs (xdpctl_abi.h): its own data section, shared by every
 * program through its pin, so that the check is one load from a known address. */
volatile __u32 dp_capture_on SEC(".data.capture");

/* Whether a capture runs: all every packet pays for capture while none does. */
static __always_inline int capture_running(void)
{
#ifdef DP_CAPTURE_COMPILED_OUT /* the benchmark's build without it (bpf/bench) */
	return 0;
#endif
	return dp_capture_on;
}

/* A record for the packet, when the running capture wants it and its CPU's bucket has a
 * token; the caller fills data[0..caplen) and submits it. Null otherwise (counted). */
static __always_inline struct dp_capture_rec *capture_reserve(const struct dp_pkt *p, __u32 hook, __u32 verdict,
							       __u32 reason, __u32 decider)
{
	__u32 zero = 0;
	const struct dp_capture_cfg *c = bpf_map_lookup_elem(&dp_capture, &zero);
	struct dp_capture_stats *s = bpf_map_lookup_elem(&dp_capture_stats, &zero);
	struct dp_capture_rec *r;
	__u64 now, full, tokens;

	if (!c || !s || !c->on || verdict >= 32 || reason >= 32 || hook >= 32)
		return 0;
	if ((c->ifindex && c->ifindex != p->ifindex) || !(c->hooks & (1u << hook)) || !(c->verdicts & (1u << verdict)) ||
	    !(c->reasons & (1u << reason)) || (decider & c->decider_mask) != c->decider)
		return 0;
	now = bpf_ktime_get_ns();
	full = c->burst * 1000000000ull;
	tokens = s->tokens + (now - s->last_ns) * c->rate;
	if (s->last_ns == 0 || tokens > full)
		tokens = full;
	s->last_ns = now;
	if (tokens < 1000000000ull) {
		s->tokens = tokens;
		s->limited++;
		return 0;
	}
	s->tokens = tokens - 1000000000ull;
	r = bpf_ringbuf_reserve(&dp_capture_ring, sizeof(*r), 0);
	if (!r) {
		s->lost++;
		return 0;
	}
	s->recorded++;
	r->ts_ns = now;
	r->ifindex = p->ifindex;
	r->len = p->len;
	r->caplen = p->len < c->snaplen ? p->len : c->snaplen;
	if (r->caplen > DP_CAPTURE_SNAP_MAX)
		r->caplen = DP_CAPTURE_SNAP_MAX;
	r->decider = decider;
	r->hook = hook;
	r->verdict = verdict;
	r->reason = reason;
	return r;
}

/* Submits a record. Waking the reader costs an interrupt (irq_work) per record, a
 * self-IPI that makes a virtual machine exit: that, not the copy, was most of what a
 * recorded packet cost. The reader is woken once DP_CAPTURE_WAKE_BYTES wait, once per
 * filling: capture_woken is set by the record that wakes it (a reader slow to run would
 * otherwise be woken by every record until it ran) and cleared by one that finds the
 * ring drained below the mark. A flag rather than the one record that crosses the mark:
 * with several CPUs recording, the crossing record may see others' reservations already
 * past it. Two CPUs racing on the flag cost at most a second wakeup. The reader also
 * reads whatever is there when its poll times out (100 ms). */
#define DP_CAPTURE_WAKE_BYTES (256 * 1024)

static volatile __u32 capture_woken;

static __always_inline void capture_submit(struct dp_capture_rec *r)
{
	__u64 waiting = bpf_ringbuf_query(&dp_capture_ring, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (waiting < DP_CAPTURE_WAKE_BYTES) {
		if (capture_woken)
			capture_woken = 0;
	} else if (!capture_woken) {
		capture_woken = 1;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(r, flags);
}

#endif
