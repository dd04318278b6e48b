#!/usr/bin/env bash
# Builds a Debian package of xdpctl: the binary (a release build with the Swift runtime
# linked in statically, so only Debian's libraries are needed), the systemd unit
# (packaging/xdpctl.service), a man page for every command, and the example configs.
#
#   scripts/package.sh [--binary PATH] [--out DIR] [--version VERSION]
#
# --binary packages that binary instead of building one (the tests pass their debug
# build, which needs the Swift toolchain's libraries: fine for checking the package,
# not for installing it elsewhere). Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="" out=".build/package" version=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
maintainer="xdpctl maintainers <$(git log -1 --format=%ae 2>/dev/null || echo maintainers@xdpctl.example.org)>"
[ -n "$version" ] || version="0.1.$(git rev-list --count HEAD 2>/dev/null || echo 0)"
if [ -z "$binary" ]; then
    swift build -c release --static-swift-stdlib --product xdpctl >&2
    binary=".build/release/xdpctl"
fi
[ -x "$binary" ] || { echo "package.sh: no executable at $binary" >&2; exit 1; }
manual=".build/debug/generate-manual" # swift-argument-parser's man page generator
[ -x "$manual" ] || swift build --product generate-manual >&2

root="$(mktemp -d)"
trap 'rm -rf "$root" "$root.src"' EXIT
doc="$root/usr/share/doc/xdpctl"
install -D -m 0755 "$binary" "$root/usr/bin/xdpctl"
strip --strip-unneeded "$root/usr/bin/xdpctl"
install -D -m 0644 packaging/xdpctl.service "$root/lib/systemd/system/xdpctl.service"
install -D -m 0644 packaging/copyright "$doc/copyright"
install -d "$doc/examples" "$root/usr/share/man/man1" "$root/DEBIAN"
install -m 0644 configs/*.json "$doc/examples/"
date="$(git log -1 --format=%cs 2>/dev/null || date -u +%F)"
"$manual" "$root/usr/bin/xdpctl" --multi-page --date "$date" -o "$root/usr/share/man/man1" >&2
gzip -9n "$root"/usr/share/man/man1/*.1
{
    echo "xdpctl ($version) unstable; urgency=medium"
    echo
    echo "  * Built from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo
    echo " -- $maintainer  $(date -u -R -d "$date")"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# Depends: the Debian packages that hold the libraries the binary links, with the
# versions their symbols need (dpkg-shlibdeps wants a debian/control beside it).
mkdir -p "$root.src/debian"
printf 'Source: xdpctl\n\nPackage: xdpctl\nArchitecture: any\n' > "$root.src/debian/control"
depends="$(cd "$root.src" && dpkg-shlibdeps --ignore-missing-info -O -e"$root/usr/bin/xdpctl" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
rm -rf "$root.src"
cat > "$root/DEBIAN/control" <<CONTROL
Package: xdpctl
Version: $version
Architecture: $(dpkg --print-architecture)
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: XDP packet-processing data plane: firewall, rate limits, NAT, L4 load balancing
 xdpctl programs eBPF programs at the XDP and tc hooks from one JSON config:
 first-match firewall rules compiled into decision trees, token-bucket rate
 limits, SNAT and DNAT with connection tracking, and a Maglev load balancer,
 all applied atomically. The agent (xdpctl.service) keeps the config applied,
 checks backends' health and serves Prometheus metrics.
CONTROL
mkdir -p "$out"
deb="$out/xdpctl_${version}_$(dpkg --print-architecture).deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
