#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <linux/if_link.h>
