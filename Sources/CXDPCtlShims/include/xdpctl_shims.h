/*
 * The only C the control plane needs: errno captured right after the call that set it,
 * libxdp's ERR_PTR results, the libbpf print callback, setns(), and the agent's
 * signal self-pipe and eventfd (Glibc's Swift module lacks eventfd, and Swift cannot
 * write a signal handler).
 * Every function returns 0 / a valid fd, or a negative errno.
 */
#ifndef XDPCTL_SHIMS_H
#define XDPCTL_SHIMS_H

#include <stddef.h>
#include <bpf/libbpf.h>

/* Opens an ELF object from memory; maps with LIBBPF_PIN_BY_NAME go under pin_root (may be NULL). */
struct bpf_object *xdpctl_object_open_mem(const void *buf, size_t len, const char *name,
					  const char *pin_root, int *err);

/* Routes libbpf and libxdp messages up to max_level into sink, one line per call. */
typedef void (*xdpctl_log_sink)(int level, const char *line);
void xdpctl_set_log_sink(xdpctl_log_sink sink, int max_level);

/* Stores value at *word in one atomic store (a reader sees the old word or the new one). */
void xdpctl_store_word(unsigned int *word, unsigned int value);

/* Moves the calling thread into the network namespace at path (/run/netns/NAME). */
int xdpctl_setns(const char *path);

/* Handles the count signals by writing each one's number into a pipe, unblocks them in
 * the calling thread (threads it starts later inherit its mask), and returns the pipe's
 * read end (non-blocking; the same on every call), or a negative errno. A pipe, not a
 * signalfd: a signal goes to any thread that does not block it, and libraries start
 * threads that block nothing (swift-subprocess's process monitor). */
int xdpctl_signal_fd(const int *signals, int count);

/* The number of the next signal written into the pipe, or a negative errno (-EAGAIN: none). */
int xdpctl_read_signal(int fd);

/* A close-on-exec, non-blocking eventfd, or a negative errno. */
int xdpctl_event_fd(void);

/* 1 when path lies on a BPF filesystem, 0 when not, or a negative errno. */
int xdpctl_is_bpffs(const char *path);

/* The driver of an interface of the calling thread's network namespace, as ethtool
 * names it ("veth", "mlx5_core"...): 0, or a negative errno. An ioctl, which Swift cannot
 * call (it is variadic). */
int xdpctl_link_driver(const char *ifname, char *driver, size_t len);

/* The ifindex of a veth's peer (its ethtool statistic peer_ifindex, an index in the
 * peer's network namespace), or a negative errno. */
int xdpctl_veth_peer(const char *ifname);

/* The id the calling thread's network namespace gives the namespace of interface
 * ifindex's link peer (IFLA_LINK_NETNSID): >= 0; -ENOENT when the peer is in this
 * namespace; another negative errno on failure. */
int xdpctl_link_netnsid(int ifindex);

/* The id the calling thread's network namespace gives the namespace at path (a file
 * under /run/netns): >= 0, or a negative errno (-ENOENT: it has none). */
int xdpctl_netnsid_of(const char *path);

/* An interface's receive and send offloads: bit 0 set when GRO is on, bit 1 when TX
 * checksum offload is; or a negative errno. */
int xdpctl_offloads(const char *ifname);

/* Name and id of the XDP program an interface runs, whoever attached it (libxdp). */
int xdpctl_xdp_program_on(int ifindex, char *name, size_t name_len, unsigned int *prog_id);

#endif
