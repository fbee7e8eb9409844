#!/usr/bin/env bash
# mem.sh: the example server's resident memory under large patches, on the
# memory store and, with LPSEC_MEM_DATABASE_URL (or LPSEC_TEST_DATABASE_URL
# from scripts/with-postgres.sh), on PostgreSQL.
#
#   1. idle RSS after start-up and one admin login;
#   2. one 64 MiB upload (a signed module padded with random bytes, as an
#      uncompressed tar): peak RSS during it (VmHWM after resetting it via
#      /proc/PID/clear_refs) minus idle. Target: < 100 MiB above idle;
#   3. 300 concurrent slow readers (32 KiB/s each, 20 s) of a 40 MB patch:
#      peak RSS meanwhile. Target: < 150 MiB.
#
# Needs root (clear_refs of another process), curl, python3, openssl.
# Environment: MEM_READERS (300), MEM_READ_FOR (20s).
set -euo pipefail
cd "$(dirname "$0")/.."
READERS=${MEM_READERS:-300}
READ_FOR=${MEM_READ_FOR:-20s}
for tool in curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "mem.sh: $tool is required" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-mem.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building"
go build -o "$work/" ./examples/server ./examples/patchtool ./bench/slowread

echo "== a signing key and two padded, signed patches (40 MB, 64 MiB)"
"$work/patchtool" keygen --bits 3072 --key "$work/k.pem" --cert "$work/c.pem" >/dev/null
make_patch() { # version total_bytes
  # The demo module: its .modinfo (name, vermagic) agrees with the package
  # step's metadata, which patchverify checks; the padding after the ELF
  # object is covered by the signature like the rest of the file.
  local unsigned=examples/demo/module/livepatch_demo.ko
  mkdir -p "$work/p$1"
  local mod="$work/p$1/livepatch_demo.ko"
  cp "$unsigned" "$mod"
  # Leave room for the signature (~0.6 KB) and the tar headers (~3 KB).
  head -c $(( $2 - $(stat -c %s "$unsigned") - 8192 )) /dev/urandom >>"$mod"
  "$work/patchtool" sign --key "$work/k.pem" --cert "$work/c.pem" "$mod" >/dev/null
  "$work/patchtool" package --kernel 6.1.0-18 --flavour amd64 --version "$1" -o "$work/livepatch-6.1.0-18-amd64-$1-x86_64.tar" "$mod"
}
p40=$(make_patch 1 40000000)
p64=$(make_patch 2 $((64 << 20)))
password=$(openssl rand -hex 12)
if command -v htpasswd >/dev/null; then
  hash=$(htpasswd -nbBC 10 alice "$password" | cut -d: -f2-)
else
  hash=$(python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' "$password")
fi

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status"; }
reset_hwm() { echo 5 >"/proc/$server_pid/clear_refs"; }
mib() { echo $(( $1 / 1024 )); }

status=0
run_store() { # store database_url
  local store=$1 db=$2
  local args=(--listen 127.0.0.1:0 --state-dir "$work/state-$store" --signing-cert "$work/c.pem"
              --admin-users "alice:$hash" --max-patch-size $((80 << 20)) --log-level error)
  if [ -n "$db" ]; then args+=(--database-url "$db" --root-key-kek "$(openssl rand -base64 32)"); fi
  "$work/server" "${args[@]}" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 200); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
    sleep 0.1
  done
  local url ca mac
  url=$(sed -n 's/.*listening on \(https:[^ ]*\).*/\1/p' "$work/server.out")
  ca=$(sed -n 's/.*CA in \([^ ]*\) (.*/\1/p' "$work/server.out")
  mac=$(curl -sS --fail-with-body --cacert "$ca" -u "alice:$password" -X POST "$url/v1/admin/login" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["authorization"])')
  local idle; idle=$(rss_kib)

  reset_hwm
  curl -sS --fail-with-body --cacert "$ca" -H "Authorization: $mac" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$p64" "$url/v1/admin/patches" >/dev/null
  local up_peak up_after; up_peak=$(hwm_kib); up_after=$(rss_kib)
  local purl; purl=$(curl -sS --fail-with-body --cacert "$ca" -H "Authorization: $mac" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$p40" "$url/v1/admin/patches" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
  local before_read; before_read=$(rss_kib)
  reset_hwm
  local out; out=$("$work/slowread" -n "$READERS" -rate 32768 -for "$READ_FOR" -ca "$ca" "$purl")
  local read_peak; read_peak=$(hwm_kib)

  local up_delta=$(( up_peak - idle ))
  local v1="ok (< 100 MiB)" v2="ok (< 150 MiB)"
  [ "$up_delta" -lt $((100 * 1024)) ] || { v1="NOT met (>= 100 MiB)"; status=1; }
  [ "$read_peak" -lt $((150 * 1024)) ] || { v2="NOT met (>= 150 MiB)"; status=1; }
  case "$out" in "downloads opened $READERS,"*) ;; *) v2="$v2; NOT all readers served"; status=1 ;; esac
  printf '%-10s idle %4d MiB | 64 MiB upload: peak %4d MiB = idle + %4d MiB (%s), after %4d MiB | %d slow readers of 40 MB: peak %4d MiB (%s; before %d MiB; %s)\n' \
    "$store" "$(mib "$idle")" "$(mib "$up_peak")" "$(mib "$up_delta")" "$v1" "$(mib "$up_after")" \
    "$READERS" "$(mib "$read_peak")" "$v2" "$(mib "$before_read")" "$out"
  kill "$server_pid"; wait "$server_pid" || true; server_pid=""
}

echo "== measuring"
run_store memory ""
db=${LPSEC_MEM_DATABASE_URL:-${LPSEC_TEST_DATABASE_URL:-}}
if [ -n "$db" ]; then
  run_store postgresql "$db"
else
  echo "postgresql: skipped (set LPSEC_MEM_DATABASE_URL or run under scripts/with-postgres.sh)"
fi
exit $status
