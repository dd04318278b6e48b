/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * firewall.h — ordered first-match filtering at a cost that does not grow with the
 * number of rules.
 *
 * The control plane compiles the ordered rule list into at most DP_FW_MAX_TREES
 * decision trees (HiCuts-style cuts, EffiCuts-style separation of rules that would be
 * copied too often). Per tree a packet reads at most DP_FW_MAX_DEPTH cut nodes to
 * reach a leaf and tries at most DP_FW_LEAF_MAX rules in priority order, stopping at
 * the first rule that cannot beat the best match so far. See xdpctl_abi.h.
 */
#ifndef DP_FIREWALL_H
#define DP_FIREWALL_H

#include "common.h"

/* A table is one value holding all its nodes, so a node is an offset from the table,
 * bounded by dp_fw_nodes, rather than a map lookup of its own. */
struct dp_fw_tree {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	/* dp_fw_nodes nodes: the loader gives the real shape (libbpf 1.1 cannot size
	 * inner values from BTF) */
	__uint(value_size, DP_FW_MIN_NODES * sizeof(struct dp_fw_node));
	__uint(map_flags, BPF_F_MMAPABLE); /* apply reads and writes tables in place */
};

/* Nodes in every table of this program instance, set by the loader (DP_FW_RODATA). */
const volatile __u32 dp_fw_nodes SEC(DP_FW_RODATA) = DP_FW_MIN_NODES;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DP_GEN_SLOTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct dp_fw_tree);
} dp_fw_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_MAX_RULES);
	__type(key, __u32);
	__type(value, struct dp_rule_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_rule_stats SEC(".maps");

/* Whether lo[i] <= key[i] <= hi[i] for every key word: a RULE node's (or a rate-limit
 * entry's) match box. An IPv4 key is decided by its first address words, ports,
 * protocol and family: its other address words are 0, and every box that admits IPv4
 * spans 0 there (Boxes.expand in the compiler), so only IPv6 keys compare them. */
static __always_inline int fw_box_matches(const __u32 *lo, const __u32 *hi, const __u32 *key)
{
	/* In the order that rejects soonest: the rules a leaf holds share its cut bits, and
	 * differ most in protocol and addresses (family is the same in most sets). */
	static const int first[] = { DP_FW_F_PROTO, DP_FW_F_SRC0, DP_FW_F_DST0, DP_FW_F_DPORT,
				     DP_FW_F_SPORT, DP_FW_F_FAMILY };
	static const int rest[] = { DP_FW_F_SRC0 + 1, DP_FW_F_SRC0 + 2, DP_FW_F_SRC0 + 3,
				    DP_FW_F_DST0 + 1, DP_FW_F_DST0 + 2, DP_FW_F_DST0 + 3 };

#pragma unroll
	for (int i = 0; i < 6; i++)
		if (key[first[i]] - lo[first[i]] > hi[first[i]] - lo[first[i]])
			return 0;
	if (key[DP_FW_F_FAMILY] == 4)
		return 1;
#pragma unroll
	for (int i = 0; i < 6; i++)
		if (key[rest[i]] - lo[rest[i]] > hi[rest[i]] - lo[rest[i]])
			return 0;
	return 1;
}

/* Node idx of the table, or NULL past its end. */
static __always_inline const struct dp_fw_node *fw_node(const struct dp_fw_node *table, __u32 idx)
{
	__u64 i = idx;

	if (idx >= dp_fw_nodes)
		return NULL;
	/* The offset comes from the index just checked, not one the compiler kept from
	 * before, so the verifier knows its bound (and as 64 bits, so that it is not
	 * zero-extended again). */
	asm volatile("" : "+r"(i));
	return &table[i];
}

/* The key word a CUT or LEAF node's field names (a field past the key, which no
 * compiled table holds, reads word 0). */
static __always_inline __u32 fw_key_word(const struct dp_fw_node *n, const struct dp_pkt *p)
{
	__u32 field = n->field;

	return p->key[field < DP_FW_NFIELDS ? field : 0];
}

/* The child of CUT node n that the packet goes to. */
static __always_inline __u32 fw_child(const struct dp_fw_node *n, const struct dp_pkt *p)
{
	__u32 word = fw_key_word(n, p), bits = n->bits & 31;

	if ((word & n->guard_mask) != n->guard_value)
		return n->base + (1U << bits);
	return n->base + ((word >> (n->shift & 31)) & ((1U << bits) - 1));
}

/*
 * Walks two trees from roots a and b at once, a level of each per step, so the CPU
 * follows both chains of dependent loads together; leaves the leaves (or NULL) in
 * *leaf_a and *leaf_b. A root of ~0 is no tree.
 */
static __always_inline void fw_find_leaves(const struct dp_fw_node *table, __u32 a, __u32 b, const struct dp_pkt *p,
					   const struct dp_fw_node **leaf_a, const struct dp_fw_node **leaf_b)
{
	const struct dp_fw_node *na = NULL, *nb = NULL;
	int walk_a = a != ~0U, walk_b = b != ~0U;

	for (int depth = 0; depth <= DP_FW_MAX_DEPTH && (walk_a || walk_b); depth++) {
		if (walk_a) {
			na = fw_node(table, a);
			if (na && na->kind == DP_FW_NODE_CUT)
				a = fw_child(na, p);
			else
				walk_a = 0;
		}
		if (walk_b) {
			nb = fw_node(table, b);
			if (nb && nb->kind == DP_FW_NODE_CUT)
				b = fw_child(nb, p);
			else
				walk_b = 0;
		}
	}
	*leaf_a = walk_a ? NULL : na;
	*leaf_b = walk_b ? NULL : nb;
}

/* What decides a packet: a rule's (or the header's) priority, counter slot and action.
 * Kept as values rather than a pointer into the table: the verifier then sees every
 * path through the trees end alike, and prunes them. */
struct fw_match {
	__u32 priority;
	__u32 slot;
	__u32 action;
};

static __always_inline void fw_take(struct fw_match *m, const struct dp_fw_node *n)
{
	m->priority = n->priority;
	m->slot = n->slot;
	m->action = n->action;
}

/* The rule of `leaf` that beats *best, if any, becomes *best. */
static __always_inline void fw_try_leaf(const struct dp_fw_node *table, const struct dp_fw_node *leaf, const struct dp_pkt *p,
					struct fw_match *best)
{
	__u32 base, count;

	/* A leaf's priority is at most its rules': none of them beats a match that good. */
	if (!leaf || leaf->kind != DP_FW_NODE_LEAF || leaf->priority >= best->priority)
		return;
	/* The leaf's guard: a word all its rules' ranges lie within (see xdpctl_abi.h). */
	if (fw_key_word(leaf, p) - leaf->guard_value > ~leaf->guard_mask)
		return;
	base = leaf->base;
	count = leaf->count;
	for (__u32 i = 0; i < DP_FW_LEAF_MAX && i < count; i++) {
		const struct dp_fw_node *r = fw_node(table, base + i);

		if (!r || r->priority >= best->priority)
			return;
		if (fw_box_matches(r->lo, r->hi, p->key)) {
			fw_take(best, r);
			return;
		}
	}
}

/*
 * fw_classify — fills *best with the rule of generation slot `slot` that decides the
 * packet: the first matching rule, or the header, which carries the default action.
 * Returns 0 when the slot holds no firewall.
 */
static __always_inline int fw_classify(const struct dp_pkt *p, __u32 slot, struct fw_match *best)
{
	__u32 zero = 0;
	const struct dp_fw_node *table, *header;
	void *tree = bpf_map_lookup_elem(&dp_fw_v3, &slot);

	if (!tree)
		return 0;
	header = table = bpf_map_lookup_elem(tree, &zero); /* node 0 */
	if (!header || header->kind != DP_FW_NODE_HEADER)
		return 0;
	fw_take(best, header);

	/* Trees in pairs, walked together; a tree whose best priority cannot beat the match
	 * so far (found in earlier pairs) is skipped. */
	for (__u32 t = 0; t < DP_FW_MAX_TREES && t < header->count; t += 2) {
		const struct dp_fw_node *leaf_a, *leaf_b;
		__u32 a = header->lo[t] < best->priority ? header->hi[t] : ~0U;
		__u32 b = t + 1 < header->count && header->lo[t + 1] < best->priority ? header->hi[t + 1] : ~0U;

		fw_find_leaves(table, a, b, p, &leaf_a, &leaf_b);
		/* The leaf whose rules come first is tried first: its match leaves fewer of the
		 * other's rules to check. */
		if (leaf_a && leaf_b && leaf_b->priority < leaf_a->priority) {
			const struct dp_fw_node *first = leaf_b;

			leaf_b = leaf_a;
			leaf_a = first;
		}
		fw_try_leaf(table, leaf_a, p, best);
		fw_try_leaf(table, leaf_b, p, best);
	}
	return 1;
}

/* Adds the packet to the rule's hit counters. */
static __always_inline void fw_count(const struct fw_match *rule, const struct dp_pkt *p)
{
	__u32 slot = rule->slot;
	struct dp_rule_stats *s = bpf_map_lookup_elem(&dp_rule_stats, &slot);

	if (s) {
		s->packets++;
		s->bytes += p->len;
	}
}

#endif
