/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xdp_ingress with capture compiled out: the benchmark runs it beside xdp_ingress, on
 * the same tables and frames, to measure what capture's check costs a packet while no
 * capture runs.
 */
#define DP_CAPTURE_COMPILED_OUT 1
#include "../xdp_ingress.bpf.c"
