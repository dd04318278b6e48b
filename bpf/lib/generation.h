/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * generation.h — the interface's root: one word names every table of the running
 * generation (see xdpctl_abi.h). A packet reads it once and uses only that generation.
 */
#ifndef DP_GENERATION_H
#define DP_GENERATION_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_MMAPABLE); /* apply stores the word through the map's memory */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_gen SEC(".maps");

/* Never read by the program: apply updates it to wait for an RCU grace period after a
 * store to dp_gen (an update of a map of maps returns only after one). */
struct dp_gen_wait_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_gen_wait_inner);
} dp_gen_wait SEC(".maps");

/* The running generation's word: its slot (DP_GEN_SLOT) and tables (enum dp_gen_table);
 * 0 when none is installed. */
static __always_inline __u32 gen_read(void)
{
	__u32 zero = 0;
	const volatile __u32 *word = bpf_map_lookup_elem(&dp_gen, &zero);

	return word ? *word : 0;
}

#endif
