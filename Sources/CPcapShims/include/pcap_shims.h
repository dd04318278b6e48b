/*
 * libpcap's filter compiler behind an opaque handle. libpcap's headers define a classic
 * `struct bpf_insn`, libbpf's an eBPF one: Swift cannot import both into one module, so
 * only this C file includes <pcap/pcap.h>.
 */
#ifndef XDPCTL_PCAP_SHIMS_H
#define XDPCTL_PCAP_SHIMS_H

#include <stddef.h>
#include <stdint.h>

struct xdpctl_pcap_filter;

/* Compiles a tcpdump filter expression for Ethernet frames of at most snaplen bytes.
 * Null on failure, with libpcap's message in err. */
struct xdpctl_pcap_filter *xdpctl_pcap_filter_new(const char *expression, int snaplen, char *err, size_t errlen);

/* Whether the frame (caplen bytes at data, of a frame of len bytes) passes. */
int xdpctl_pcap_filter_matches(const struct xdpctl_pcap_filter *f, const uint8_t *data, uint32_t caplen, uint32_t len);

void xdpctl_pcap_filter_free(struct xdpctl_pcap_filter *f);

#endif
