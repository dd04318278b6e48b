/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The traffic generator's relay. AF_PACKET hands a veth socket buffers, and a veth's XDP
 * copies a socket buffer's head into a page before it runs (its head is not a page
 * fragment), which a NIC's frames never cost. So the generator's frames cross a first
 * veth pair, whose receiving end redirects them with this program into the veth under
 * test: they arrive there as XDP frames, as from a NIC's ring, and the copy stays on the
 * generator's CPU.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The interface frames are redirected to (its index, in slot 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} relay_to SEC(".maps");

SEC("xdp")
int xdp_relay(struct xdp_md *ctx)
{
	__u32 zero = 0, *ifindex = bpf_map_lookup_elem(&relay_to, &zero);

	return ifindex ? bpf_redirect(*ifindex, 0) : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
