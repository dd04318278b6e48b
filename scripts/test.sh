#!/usr/bin/env bash
# The test command: installs what it needs, builds, and runs every layer —
# unit (no privileges), kernel (PROG_TEST_RUN fixtures) and end-to-end (veth pairs in
# network namespaces, real TCP/UDP). Kernel and netns tests fail, never skip, when they
# cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build
swift build --product generate-manual # scripts/package.sh's man pages, which a test packages
XDPCTL_BIN="$PWD/.build/debug/xdpctl" swift test "$@"
