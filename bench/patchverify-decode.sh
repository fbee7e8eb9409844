#!/usr/bin/env bash
# patchverify-decode.sh: the in-process decoders VerifyPatch uses against
# the programs (gzip -d, bzip2 -d, xz -d, zstd -d) on the same 4 MiB module,
# measured in the same run; then VerifyPatch's peak memory on a 60 MiB
# module in a tar.gz against the module's size.
#
# Prints seconds per decode and the ratio in-process/program (below 1: the
# in-process decoder is faster), and peak RSS / module size (target: < 2.5,
# about one copy of the module plus the compressed patch and the runtime).
# Environment: DECODE_SIZE (default 4 MiB), DECODE_RUNS (default 5),
# VERIFY_SIZE (default 60 MiB). Needs gzip, bzip2, xz, zstd, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${DECODE_SIZE:-$((4 << 20))}
RUNS=${DECODE_RUNS:-5}
VSIZE=${VERIFY_SIZE:-$((60 << 20))}
for tool in gzip bzip2 xz zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "patchverify-decode.sh: $tool is required" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/pvdecode" ./bench/patchverify-decode
"$tmp/pvdecode" module "$SIZE" "$tmp/m.ko"

now() { date +%s.%N; }
printf '%-6s %10s %12s %12s %8s\n' format bytes in-process program ratio
for f in gz bz2 xz zst; do
  case $f in
    gz) gzip -9 -n -c "$tmp/m.ko" > "$tmp/m.$f"; prog="gzip -dc" ;;
    bz2) bzip2 -9 -c "$tmp/m.ko" > "$tmp/m.$f"; prog="bzip2 -dc" ;;
    xz) xz -9 -c "$tmp/m.ko" > "$tmp/m.$f"; prog="xz -dc" ;;
    zst) zstd -19 -q -c "$tmp/m.ko" > "$tmp/m.$f"; prog="zstd -dcq" ;;
  esac
  inproc=$("$tmp/pvdecode" decode "$tmp/m.$f" "$RUNS")
  start=$(now)
  for _ in $(seq "$RUNS"); do $prog "$tmp/m.$f" > /dev/null; done
  progt=$(echo "($(now) - $start) / $RUNS" | bc -l)
  printf '%-6s %10s %11.4fs %11.4fs %8.2f\n' "$f" "$(stat -c %s "$tmp/m.$f")" "$inproc" "$progt" "$(echo "$inproc / $progt" | bc -l)"
done

sum=$("$tmp/pvdecode" patch "$VSIZE" "$tmp")
/usr/bin/time -v "$tmp/pvdecode" verify "$tmp/patch.tar.gz" "$sum" "$tmp/cert.pem" > /dev/null 2> "$tmp/time"
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tmp/time")
ratio=$(echo "$rss * 1024 / $VSIZE" | bc -l)
printf 'VerifyPatch, %d MiB module in a %d-byte tar.gz: peak RSS %d KiB, %.2f x the module\n' "$((VSIZE >> 20))" "$(stat -c %s "$tmp/patch.tar.gz")" "$rss" "$ratio"
awk -v r="$ratio" 'BEGIN { exit !(r < 2.5) }' || { echo "TOO MUCH (>= 2.5 x the module)"; exit 1; }
