/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * generation.h — the interface's root: one lookup names every table of the running
 * generation (see xdpctl_abi.h). A packet reads it once and uses only that generation.
 */
#ifndef DP_GENERATION_H
#define DP_GENERATION_H

#include "common.h"

struct dp_gen_record {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dp_generation)); /* libbpf 1.1 cannot size inner values from BTF */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_gen_record);
} dp_gen SEC(".maps");

/* The running generation's slot and tables; no tables when none is installed. */
static __always_inline void gen_read(struct dp_generation *g)
{
	__u32 zero = 0;
	void *record = bpf_map_lookup_elem(&dp_gen, &zero);
	const struct dp_generation *r = record ? bpf_map_lookup_elem(record, &zero) : 0;

	g->slot = 0;
	g->tables = 0;
	if (r && r->slot < DP_GEN_SLOTS) {
		g->slot = r->slot;
		g->tables = r->tables;
	}
}

#endif
