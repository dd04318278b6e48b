/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The benchmark's wrapper for paths that rewrite the packet: PROG_TEST_RUN with repeat=N
 * runs every iteration on the previous one's output, so before each run this program
 * writes the frame's first RESTORE_BYTES back from a map, then tail-calls the program
 * under test (slot 0 of restore_target). With `vary` set, every run also gets a source
 * port and low source-address bits of its own (a new flow each time; checksums are left
 * stale, which the program under test does not check). Its own cost is measured by
 * putting a trivial program in the slot.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define RESTORE_BYTES 64
#define IPV4_SRC_LOW 28  /* the last two bytes of the IPv4 source: Ethernet 14 + 12 + 2 */
#define L4_SPORT 34      /* Ethernet 14 + IPv4 20 */

struct restore_frame {
	__u64 words[RESTORE_BYTES / 8];
	__u32 vary;
	__u32 pad;
	__u64 runs;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct restore_frame);
} restore_frame SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} restore_target SEC(".maps");

SEC("xdp")
int restore_run(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u64 *packet = data;
	__u32 zero = 0;
	struct restore_frame *f = bpf_map_lookup_elem(&restore_frame, &zero);

	if (!f || data + RESTORE_BYTES > end)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < RESTORE_BYTES / 8; i++)
		packet[i] = f->words[i];
	if (f->vary) {
		__u64 n = f->runs++;
		__u16 *src_low = data + IPV4_SRC_LOW, *sport = data + L4_SPORT;

		*sport = bpf_htons(1024 + (n & 0x7fff));
		*src_low = bpf_htons(n >> 15);
	}
	bpf_tail_call(ctx, &restore_target, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
