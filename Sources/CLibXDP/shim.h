#include <xdp/libxdp.h>
