/*
 * libpcap's filter compiler, file reader and file writer behind opaque handles. libpcap's headers define a classic
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

struct xdpctl_pcap_reader;

/* Opens a pcap or pcapng file ("-": standard input) of Ethernet frames, timestamps in
 * ns. Null on failure (a link type other than Ethernet included), with why in err. */
struct xdpctl_pcap_reader *xdpctl_pcap_reader_open(const char *path, char *err, size_t errlen);

/* The next packet: 1 with *data valid until the next call; 0 at the end; -1 with why in
 * err (a truncated file). */
int xdpctl_pcap_reader_next(struct xdpctl_pcap_reader *r, uint64_t *ts_ns, uint32_t *caplen, uint32_t *len,
			    const uint8_t **data, char *err, size_t errlen);

void xdpctl_pcap_reader_close(struct xdpctl_pcap_reader *r);

struct xdpctl_pcap_writer;

/* Creates a pcap file ("-": standard output) of Ethernet frames with ns timestamps. */
struct xdpctl_pcap_writer *xdpctl_pcap_writer_open(const char *path, int snaplen, char *err, size_t errlen);

void xdpctl_pcap_writer_write(struct xdpctl_pcap_writer *w, uint64_t ts_ns, const uint8_t *data, uint32_t caplen, uint32_t len);

/* Flushes and closes; 0, or -1 when the data could not all be written. */
int xdpctl_pcap_writer_close(struct xdpctl_pcap_writer *w);

#endif
