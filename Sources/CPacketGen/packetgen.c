#define _GNU_SOURCE
#include "packetgen.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int packetgen_open(int ifindex)
{
	int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: sends only, receives nothing */
	if (fd < 0)
		return -errno;
	int one = 1;
	struct sockaddr_ll addr = { .sll_family = AF_PACKET, .sll_ifindex = ifindex };
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int packetgen_send(int fd, const uint8_t *data, const uint32_t *lengths, uint32_t nframes,
		   uint64_t count, uint64_t rate_pps, double seconds, struct packetgen_report *report)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint64_t sent = 0, refused = 0, waits = 0, next = 0;
	uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), now = start;

	if (nframes == 0)
		return -EINVAL;
	const uint8_t **frames = malloc(nframes * sizeof(*frames));
	if (!frames)
		return -ENOMEM;
	for (uint32_t i = 0, at = 0; i < nframes; at += lengths[i++])
		frames[i] = data + at;
	memset(msgs, 0, sizeof(msgs));
	while (sent < count && now < deadline) {
		uint64_t batch = count - sent < BATCH ? count - sent : BATCH;
		if (rate_pps) {
			/* Frames due by now; none due: wait, spinning (the generator owns its CPU). */
			uint64_t due = (uint64_t)((double)(now - start) * (double)rate_pps / 1e9) + 1;
			if (due <= sent) {
				waits++;
				now = now_ns();
				continue;
			}
			if (due - sent < batch)
				batch = due - sent;
		}
		for (uint64_t i = 0; i < batch; i++) {
			uint32_t f = (uint32_t)((next + i) % nframes);
			iov[i] = (struct iovec){ .iov_base = (void *)frames[f], .iov_len = lengths[f] };
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		int n = sendmmsg(fd, msgs, (unsigned int)batch, 0);
		if (n < 0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
				int err = -errno;
				free(frames);
				return err;
			}
			refused++;
		} else {
			sent += (uint64_t)n;
			next = (next + (uint64_t)n) % nframes;
		}
		now = now_ns();
	}
	free(frames);
	report->sent = sent;
	report->refused = refused;
	report->waits = waits;
	report->seconds = (double)(now - start) / 1e9;
	return 0;
}
