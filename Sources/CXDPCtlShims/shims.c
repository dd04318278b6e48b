#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <linux/ethtool.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/net_namespace.h>
#include <linux/sockios.h>
#include <linux/magic.h>
#include <xdp/libxdp.h>
#include "xdpctl_shims.h"

struct bpf_object *xdpctl_object_open_mem(const void *buf, size_t len, const char *name,
					  const char *pin_root, int *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name, .pin_root_path = pin_root);
	struct bpf_object *obj = bpf_object__open_mem(buf, len, &opts);

	*err = obj ? 0 : -errno;
	return obj;
}

static xdpctl_log_sink log_sink;
static int log_max_level;

static int forward(int level, const char *fmt, va_list args)
{
	char line[1024];
	size_t n;

	if (!log_sink || level > log_max_level)
		return 0;
	vsnprintf(line, sizeof(line), fmt, args);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_sink(level, line);
	return 0;
}

static int libbpf_forward(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return forward((int)level, fmt, args);
}

static int libxdp_forward(enum libxdp_print_level level, const char *fmt, va_list args)
{
	return forward((int)level, fmt, args);
}

void xdpctl_set_log_sink(xdpctl_log_sink sink, int max_level)
{
	log_sink = sink;
	log_max_level = max_level;
	libbpf_set_print(libbpf_forward);
	libxdp_set_print(libxdp_forward);
}

int xdpctl_setns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return rc;
}

int xdpctl_xdp_program_on(int ifindex, char *name, size_t name_len, unsigned int *prog_id)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	long err = libxdp_get_error(mp);
	struct xdp_program *prog;

	if (err)
		return (int)err;
	prog = xdp_multiprog__main_prog(mp);
	if (!prog) {
		prog = xdp_multiprog__hw_prog(mp);
	}
	if (!prog) {
		xdp_multiprog__close(mp);
		return -ENOENT;
	}
	snprintf(name, name_len, "%s", xdp_program__name(prog));
	*prog_id = xdp_program__id(prog);
	xdp_multiprog__close(mp);
	return 0;
}

static int ethtool(const char *ifname, void *data);

int xdpctl_link_driver(const char *ifname, char *driver, size_t len)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	int err;

	if (!driver || !len)
		return -EINVAL;
	err = ethtool(ifname, &info);
	if (!err)
		snprintf(driver, len, "%.*s", (int)sizeof(info.driver), info.driver);
	return err;
}

/* ioctl(SIOCETHTOOL) on ifname with `data`: 0 or a negative errno. */
static int ethtool(const char *ifname, void *data)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	if (!ifname || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = data;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

int xdpctl_veth_peer(const char *ifname)
{
	struct { struct ethtool_sset_info info; __u32 count; } sset = { .info = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_STATS } };
	struct ethtool_gstrings *names = NULL;
	struct ethtool_stats *stats = NULL;
	int err, n, peer = -ENOENT;

	err = ethtool(ifname, &sset);
	if (err)
		return err;
	n = sset.info.sset_mask ? (int)sset.count : 0;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	stats = calloc(1, sizeof(*stats) + (size_t)n * sizeof(__u64));
	if (!names || !stats) {
		peer = -ENOMEM;
		goto out;
	}
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_STATS;
	names->len = n;
	stats->cmd = ETHTOOL_GSTATS;
	stats->n_stats = n;
	if ((err = ethtool(ifname, names)) || (err = ethtool(ifname, stats))) {
		peer = err;
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!strncmp((char *)names->data + i * ETH_GSTRING_LEN, "peer_ifindex", ETH_GSTRING_LEN))
			peer = (int)stats->data[i];
out:
	free(names);
	free(stats);
	return peer;
}

/* Sends one rtnetlink request and finds attribute `want` (of type `type` messages,
 * header of `hdr_len` bytes) in the answer: its s32 value, or a negative errno. */
static int rtnl_ask(void *req, size_t len, __u16 type, size_t hdr_len, __u16 want)
{
	char buf[8192];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), n, result = -ENOENT;
	struct nlmsghdr *h;

	if (fd < 0)
		return -errno;
	if (send(fd, req, len, 0) < 0 || (n = recv(fd, buf, sizeof(buf), 0)) < 0) {
		result = -errno;
		close(fd);
		return result;
	}
	close(fd);
	for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error ? e->error : -ENOENT;
		}
		if (h->nlmsg_type != type)
			continue;
		struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(hdr_len));
		int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(hdr_len);
		for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
			if (a->rta_type == want && RTA_PAYLOAD(a) >= sizeof(__s32))
				result = *(__s32 *)RTA_DATA(a);
	}
	return result;
}

int xdpctl_link_netnsid(int ifindex)
{
	struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};

	return rtnl_ask(&req, sizeof(req), RTM_NEWLINK, sizeof(struct ifinfomsg), IFLA_LINK_NETNSID);
}

int xdpctl_netnsid_of(const char *path)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
		char pad[3];
		struct rtattr a;
		__u32 fd;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETNSID, .nlmsg_flags = NLM_F_REQUEST },
		.g = { .rtgen_family = AF_UNSPEC },
		.a = { .rta_len = RTA_LENGTH(sizeof(__u32)), .rta_type = NETNSA_FD },
	};
	int fd = open(path, O_RDONLY | O_CLOEXEC), id;

	if (fd < 0)
		return -errno;
	req.fd = (__u32)fd;
	id = rtnl_ask(&req, sizeof(req), RTM_NEWNSID, sizeof(struct rtgenmsg), NETNSA_NSID);
	close(fd);
	return id < 0 && id != -ENOENT ? id : (id == NETNSA_NSID_NOT_ASSIGNED ? -ENOENT : id);
}

int xdpctl_offloads(const char *ifname)
{
	struct ethtool_value gro = { .cmd = ETHTOOL_GGRO }, tx = { .cmd = ETHTOOL_GTXCSUM };
	int err = ethtool(ifname, &gro);

	if (!err)
		err = ethtool(ifname, &tx);
	return err ? err : (gro.data ? 1 : 0) | (tx.data ? 2 : 0);
}

int xdpctl_is_bpffs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC;
}

void xdpctl_store_word(unsigned int *word, unsigned int value)
{
	__atomic_store_n(word, value, __ATOMIC_RELEASE);
}

/* The self-pipe the signal handler writes into: [0] read by the agent's loop. */
static int signal_pipe[2] = { -1, -1 };

static void on_signal(int signo)
{
	int saved = errno;
	unsigned char b = (unsigned char)signo;

	(void)!write(signal_pipe[1], &b, 1);
	errno = saved;
}

int xdpctl_signal_fd(const int *signals, int count)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigset_t set;
	int i, err;

	if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	for (i = 0; i < count; i++) {
		if (sigaction(signals[i], &sa, NULL))
			return -errno;
		sigaddset(&set, signals[i]);
	}
	err = pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return err ? -err : signal_pipe[0];
}

int xdpctl_read_signal(int fd)
{
	unsigned char b;
	ssize_t n = read(fd, &b, 1);

	if (n < 0)
		return -errno;
	return n == 1 ? b : -EIO;
}

int xdpctl_event_fd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}
