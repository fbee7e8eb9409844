#!/usr/bin/env bash
# load.sh: wrk against the example server on loopback, over keep-alive TLS.
#
# Two pairs of concurrent wrk runs, each target beside GET /healthz on the
# same server at the same time (so both see the same machine load):
#   1. GET /v1/client/{machine}/patches   with a machine token (token store)
#   2. GET /v1/admin/auth-tokens          with an admin macaroon (macaroon)
# For each it prints requests/s, latency percentiles, errors, the ratio
# target/healthz (target: >= 0.7 on both stores, with metrics on), and the
# server's resident memory at start, between the runs and at the end
# (target: flat). The server runs with --metrics-listen, and the request
# counters are checked against wrk's totals at the end.
#
# Environment: LOAD_DURATION (default 60s), LOAD_CONNECTIONS (default 8 per
# wrk), LOAD_THREADS (default 1 per wrk), LPSEC_LOAD_DATABASE_URL to run on
# PostgreSQL (with a throwaway KEK), LOAD_METRICS=0 to run without metrics,
# LOAD_TOKEN_CACHE_TTL and LOAD_REVOCATION_CACHE_TTL set the server's
# --token-cache-ttl and --revocation-cache-ttl on PostgreSQL (default 1m and
# 1s, the configuration for load; 0 turns either off, which is the server's
# own default: every check a query, refused strictly at once everywhere).
# The server follows database notifications: the auth-token listing comes
# from memory, and the two caches answer only while notifications flow (a
# revocation on another instance is refused as soon as notified), so once
# warm neither target makes a database round trip.
#
# Figures on the shared 2-core machine (Dec 2026, 15s runs, metrics on):
#   memory store:                         patch list 0.9x, admin 0.9x of /healthz
#   PostgreSQL, before notifications:     patch list 0.5x (0.86-0.98x with
#     --token-cache-ttl 1s), admin 0.26x (0.46-0.47x with --revocation-cache-ttl 1s)
#   PostgreSQL, following notifications (this version):
#     both caches 0 (the server's defaults):            patch list 0.48x, admin 0.47x
#     this script's defaults (1m, 1s), six runs:         patch list 0.89-0.93x, admin 0.71-0.76x
# Needs wrk, curl, python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${LOAD_DURATION:-60s}
CONNS=${LOAD_CONNECTIONS:-8}
THREADS=${LOAD_THREADS:-1}
for tool in wrk curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is required (Debian package ${tool/python3/python3-minimal})" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lpsec-load.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building the example binaries"
go build -o "$work/" ./examples/server ./examples/patchtool

echo "== keys, a signed patch, an admin user"
"$work/patchtool" keygen --bits 3072 --key "$work/sign-key.pem" --cert "$work/sign-cert.pem" >/dev/null
cp examples/demo/module/livepatch_demo.ko "$work/livepatch_demo.ko" # .modinfo matches the package step
"$work/patchtool" sign --key "$work/sign-key.pem" --cert "$work/sign-cert.pem" "$work/livepatch_demo.ko" >/dev/null
tarball=$("$work/patchtool" package --kernel 6.1.0-18 --flavour amd64 --version 1 -o "$work/livepatch-6.1.0-18-amd64-1-x86_64.tar.gz" "$work/livepatch_demo.ko")
password=$(openssl rand -hex 12)
if command -v htpasswd >/dev/null; then
  hash=$(htpasswd -nbBC 10 alice "$password" | cut -d: -f2-)
else
  hash=$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' "$password")
fi

args=(--listen 127.0.0.1:0 --state-dir "$work/state" --signing-cert "$work/sign-cert.pem"
      --admin-users "alice:$hash" --report-key "k1:$(openssl rand -hex 32)" --log-level error)
if [ "${LOAD_METRICS:-1}" != 0 ]; then
  args+=(--metrics-listen 127.0.0.1:0)
fi
store=memory
if [ -n "${LPSEC_LOAD_DATABASE_URL:-}" ]; then
  args+=(--database-url "$LPSEC_LOAD_DATABASE_URL" --root-key-kek "$(openssl rand -base64 32)")
  store=postgresql
  token_ttl=${LOAD_TOKEN_CACHE_TTL:-1m} revocation_ttl=${LOAD_REVOCATION_CACHE_TTL:-1s}
  args+=(--token-cache-ttl "$token_ttl" --revocation-cache-ttl "$revocation_ttl")
  store="$store, --token-cache-ttl $token_ttl, --revocation-cache-ttl $revocation_ttl"
fi
"$work/server" "${args[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/.*listening on \(https:[^ ]*\).*/\1/p' "$work/server.out")
metrics=$(sed -n 's/.*metrics on \(http:[^ ]*\).*/\1/p' "$work/server.out")
ca=$(sed -n 's/.*CA in \([^ ]*\) (.*/\1/p' "$work/server.out")
echo "== server $url (store: $store, pid $server_pid, metrics: ${metrics:-off})"

json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
c() { curl -sS --fail-with-body --cacert "$ca" "$@"; }

macaroon=$(c -u "alice:$password" -X POST "$url/v1/admin/login" | json authorization)
reg=$(c -H "Authorization: $macaroon" -H 'Content-Type: application/json' -d '{"name":"load","uses":1}' "$url/v1/admin/auth-tokens" | json token)
machine=$(openssl rand -hex 16)
mtoken=$(c -X PUT -H "Authorization: Bearer $reg" "$url/v1/client/$machine" | json machine_token)
c -H "Authorization: $macaroon" -H 'Content-Type: application/octet-stream' --data-binary "@$tarball" "$url/v1/admin/patches" >/dev/null
# Sanity: both targets answer 200 before loading them.
c -o /dev/null -H "Authorization: Bearer $mtoken" "$url/v1/client/$machine/patches?kernel=6.1.0-18-amd64"
c -o /dev/null -H "Authorization: $macaroon" "$url/v1/admin/auth-tokens"

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$server_pid/status"; }
rss_start=$(rss)

# wrk prints Non-2xx responses and socket errors only when there are some.
summarise() { # name file
  awk -v name="$1" '
    /Requests\/sec:/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +75%/ {p75=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2}
    /Non-2xx or 3xx responses:/ {non2xx=$5}
    /Socket errors:/ {sock=$0; sub(/.*Socket errors: /, "", sock)}
    /requests in/ {reqs=$1}
    END {printf "%-34s %10s req/s  p50 %-8s p75 %-8s p90 %-8s p99 %-8s  requests %s  non-2xx %s  socket errors %s\n",
         name, rps, p50, p75, p90, p99, reqs, (non2xx==""?0:non2xx), (sock==""?"none":sock)}' "$2"
}
rps_of() { awk '/Requests\/sec:/ {print $2}' "$1"; }

pair() { # label path header
  local label=$1 path=$2 header=$3
  echo
  echo "== $label beside /healthz, concurrently, $DURATION, $THREADS thread(s) x $CONNS connections each, keep-alive TLS"
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "$header" "$url$path" >"$work/target.txt" 2>&1 &
  local t=$!
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url/healthz" >"$work/health.txt" 2>&1 &
  local h=$!
  wait "$t" "$h"
  summarise "$label" "$work/target.txt"
  summarise "/healthz" "$work/health.txt"
  python3 - "$(rps_of "$work/target.txt")" "$(rps_of "$work/health.txt")" "$label" <<'PY'
import sys
t, h, label = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
r = t / h if h else 0
print(f"ratio {label} / healthz = {r:.2f}  (target >= 0.70: {'met' if r >= 0.7 else 'NOT met'})")
PY
  if grep -q "Non-2xx\|Socket errors" "$work/target.txt" "$work/health.txt"; then
    echo "ERRORS during the run (see above)"
    errors=1
  fi
}

errors=0
pair "machine-token patch list" "/v1/client/$machine/patches?kernel=6.1.0-18-amd64" "Authorization: Bearer $mtoken"
rss_mid=$(rss)
pair "admin macaroon (list auth-tokens)" "/v1/admin/auth-tokens" "Authorization: $macaroon"
rss_end=$(rss)

echo
echo "== server resident memory: start $rss_start, after run 1 $rss_mid, after run 2 $rss_end"
if [ -n "$metrics" ]; then
  echo "== metrics: $(curl -sS "$metrics" | awk '/^lpsec_http_requests_total/ {n+=$NF} END {printf "%d requests counted by lpsec_http_requests_total", n}')"
fi
kill -0 "$server_pid" || { echo "server died"; exit 1; }
[ "$errors" -eq 0 ] && echo "== 0 errors" || { echo "== errors seen"; exit 1; }
