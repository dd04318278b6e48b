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

struct xdpctl_pcap_reader {
	pcap_t *pcap;
};

struct xdpctl_pcap_reader *xdpctl_pcap_reader_open(const char *path, char *err, size_t errlen)
{
	char why[PCAP_ERRBUF_SIZE] = "";
	struct xdpctl_pcap_reader *r;
	pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, why);
	int link;

	if (!p) {
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	link = pcap_datalink(p);
	if (link != DLT_EN10MB) {
		const char *name = pcap_datalink_val_to_name(link);

		snprintf(err, errlen, "link type %s (%d) is not Ethernet; replay takes captures of Ethernet frames (not tcpdump -i any)",
			 name ? name : "unknown", link);
		pcap_close(p);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		pcap_close(p);
		return NULL;
	}
	r->pcap = p;
	return r;
}

int xdpctl_pcap_reader_next(struct xdpctl_pcap_reader *r, uint64_t *ts_ns, uint32_t *caplen, uint32_t *len,
			    const uint8_t **data, char *err, size_t errlen)
{
	struct pcap_pkthdr *h;
	const u_char *bytes;
	int rc = pcap_next_ex(r->pcap, &h, &bytes);

	if (rc == 1) {
		*ts_ns = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec; /* ns: opened with nano precision */
		*caplen = h->caplen;
		*len = h->len;
		*data = bytes;
		return 1;
	}
	if (rc == PCAP_ERROR_BREAK)
		return 0;
	snprintf(err, errlen, "%s", pcap_geterr(r->pcap));
	return -1;
}

void xdpctl_pcap_reader_close(struct xdpctl_pcap_reader *r)
{
	if (r) {
		pcap_close(r->pcap);
		free(r);
	}
}

struct xdpctl_pcap_writer {
	pcap_t *pcap;
	pcap_dumper_t *dumper;
};

struct xdpctl_pcap_writer *xdpctl_pcap_writer_open(const char *path, int snaplen, char *err, size_t errlen)
{
	struct xdpctl_pcap_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->pcap = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, snaplen, PCAP_TSTAMP_PRECISION_NANO);
	w->dumper = w->pcap ? pcap_dump_open(w->pcap, path) : NULL;
	if (!w->dumper) {
		snprintf(err, errlen, "%s", w->pcap ? pcap_geterr(w->pcap) : "libpcap cannot open a handle");
		if (w->pcap)
			pcap_close(w->pcap);
		free(w);
		return NULL;
	}
	return w;
}

void xdpctl_pcap_writer_write(struct xdpctl_pcap_writer *w, uint64_t ts_ns, const uint8_t *data, uint32_t caplen, uint32_t len)
{
	struct pcap_pkthdr h = { .caplen = caplen, .len = len };

	h.ts.tv_sec = (time_t)(ts_ns / 1000000000ull);
	h.ts.tv_usec = (suseconds_t)(ts_ns % 1000000000ull); /* ns: the handle's precision */
	pcap_dump((u_char *)w->dumper, &h, data);
}

int xdpctl_pcap_writer_close(struct xdpctl_pcap_writer *w)
{
	int rc = 0;

	if (!w)
		return 0;
	if (pcap_dump_flush(w->dumper) != 0 || ferror(pcap_dump_file(w->dumper)))
		rc = -1;
	pcap_dump_close(w->dumper);
	pcap_close(w->pcap);
	free(w);
	return rc;
}
