#!/usr/bin/env bash
# patchverify-mem.sh: peak memory (/usr/bin/time -v "Maximum resident set
# size") of patchverify.VerifyChecksum over 16 MiB and 1 GiB tarballs read
# from a pipe. The tarballs are generated as streams (never stored); the
# target is < 32 MiB for both: the checksum streams in constant memory.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/pvmem" ./bench/patchverify-mem
limit_kib=$((32 * 1024))
status=0
printf '%-8s %14s %12s  %s\n' size bytes peak_RSS result
for size in $((16 << 20)) $((1 << 30)); do
  want=$("$tmp/pvmem" gen "$size" | sha256sum | cut -c1-64)
  "$tmp/pvmem" gen "$size" | /usr/bin/time -v "$tmp/pvmem" check "$want" >"$tmp/out" 2>"$tmp/time"
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tmp/time")
  verdict="ok (< 32 MiB)"
  if [ "$rss" -ge "$limit_kib" ]; then verdict="TOO MUCH (>= 32 MiB)"; status=1; fi
  printf '%-8s %14s %9s KiB  %s; %s\n' "$((size >> 20))MiB" "$size" "$rss" "$verdict" "$(cat "$tmp/out")"
done
exit $status
