#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>
#include "pcap_shims.h"

struct xdpctl_pcap_filter {
	struct bpf_program program;
};

struct xdpctl_pcap_filter *xdpctl_pcap_filter_new(const char *expression, int snaplen, char *err, size_t errlen)
{
	struct xdpctl_pcap_filter *f;
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, snaplen);

	if (!dead) {
		snprintf(err, errlen, "libpcap cannot open a handle");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
	} else if (pcap_compile(dead, &f->program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s", pcap_geterr(dead));
		free(f);
		f = NULL;
	}
	pcap_close(dead);
	return f;
}

int xdpctl_pcap_filter_matches(const struct xdpctl_pcap_filter *f, const uint8_t *data, uint32_t caplen, uint32_t len)
{
	struct pcap_pkthdr header = { .caplen = caplen, .len = len };

	return pcap_offline_filter(&f->program, &header, data) != 0;
}

void xdpctl_pcap_filter_free(struct xdpctl_pcap_filter *f)
{
	if (f) {
		pcap_freecode(&f->program);
		free(f);
	}
}
