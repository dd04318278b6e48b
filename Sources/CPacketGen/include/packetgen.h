/*
 * The benchmark's traffic generator: prebuilt Ethernet frames sent out of one interface
 * through an AF_PACKET socket that bypasses the qdisc, in sendmmsg batches, optionally
 * paced to a rate, always stopping at a frame count or a time limit. No BPF and no live
 * frames: the receiver gets ordinary skbs, as from a NIC driver.
 *
 * C rather than Swift: Glibc's Swift module has neither sendmmsg nor struct mmsghdr, and
 * the send loop reads the clock once per batch with nothing else in the way.
 */
#ifndef PACKETGEN_H
#define PACKETGEN_H

#include <stdint.h>

struct packetgen_report {
	uint64_t sent;      /* frames the interface took */
	uint64_t refused;   /* sends refused with ENOBUFS (a full receiver ring), sent again */
	uint64_t waits;     /* times the pacing waited for the next frame's moment */
	double seconds;     /* from the first send to the last */
};

/* An AF_PACKET raw socket bound to ifindex with PACKET_QDISC_BYPASS: a fd, or a negative errno. */
int packetgen_open(int ifindex);

/*
 * Sends the nframes frames laid back to back in `data` (frame i is lengths[i] bytes), in
 * turn and over again, until `count` frames
 * went out or `seconds` passed. rate_pps 0 sends as fast as the socket takes them;
 * otherwise frame k leaves no earlier than k / rate_pps seconds after the start. A frame
 * the interface refuses (ENOBUFS) is sent again. Returns 0, or a negative errno.
 */
int packetgen_send(int fd, const uint8_t *data, const uint32_t *lengths, uint32_t nframes,
		   uint64_t count, uint64_t rate_pps, double seconds, struct packetgen_report *report);

#endif
