#!/usr/bin/env bash
# ratio.sh PKG BENCH_REGEX [benchratio flags...]
#
# Runs the paired benchmarks of PKG (a package directory, or several
# separated by spaces) (BenchmarkX/lpsec beside
# BenchmarkX/baseline) whose top-level name matches BENCH_REGEX, and prints
# for each pair the medians of several samples (-count, default 6) of CPU
# time and wall time per operation, the ratios lpsec/baseline and their
# spread, against the targets in bench/targets (tools/benchratio says how
# CPU time is measured). Flags: -count N, -benchtime D, -out FILE.
# `make bench` runs every package.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=${1:?usage: ratio.sh PKG BENCH_REGEX [benchratio flags...]}
re=${2:?usage: ratio.sh PKG BENCH_REGEX [benchratio flags...]}
shift 2
export GOTOOLCHAIN=${GOTOOLCHAIN:-$(sed -n 's/^toolchain //p' go.mod)}
bin=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-ratio.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go -C tools build -o "$bin/benchratio" ./benchratio
read -r -a pkgs <<<"$pkg"
"$bin/benchratio" -bench "$re" -targets bench/targets "$@" "${pkgs[@]}"
