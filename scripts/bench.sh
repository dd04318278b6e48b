#!/usr/bin/env bash
# The benchmark command: program cost per packet (PROG_TEST_RUN) for the firewall at
# 10, 1,000 and 10,000 rules against a trivial XDP_DROP program, medians of 5 runs.
# Usage: scripts/bench.sh [xdpctl-bench options, e.g. --rules 10 100000 --json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product xdpctl-bench 2>&1 | tail -1
exec .build/release/xdpctl-bench "$@"
