#!/usr/bin/env bash
# vulncheck.sh: govulncheck over the module, offline, against a database
# built from a pinned snapshot of the Go vulnerability database.
#
# The snapshot is the golang.org/x/vulndb module at the version (and go.sum
# hash) named in tools/vulndb.version, fetched once through the module proxy
# into the module cache like any module. tools/vulncheck turns its
# data/osv entries into a v1 database (index/db.json, index/modules.json,
# ID/*.json), cached per snapshot beside the Go build cache, and govulncheck
# (pinned in tools/go.mod) reads it with -db file://... while GOPROXY=off
# keeps the scan itself off the network.
#
# Policy (tools/vulncheck/main.go): any reachable vulnerability in a
# dependency fails; a reachable one in the standard library is listed with
# the Go release that fixes it and fails when such a release exists (the
# toolchain line in go.mod must move to it). Required-but-unreachable
# findings are counted only.
#
# To refresh the snapshot: run
#   go mod download -json golang.org/x/vulndb@latest
# put its Path, Version and Sum on the one line of tools/vulndb.version (the
# only place the snapshot is named), and run `make vulncheck`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

read -r mod version sum <tools/vulndb.version
info=$(go mod download -json "$mod@$version")
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$info" | head -1; }
dir=$(field Dir)
got=$(field Sum)
if [ -z "$dir" ]; then
  echo "$info" >&2
  echo "vulncheck: could not fetch $mod@$version" >&2
  exit 1
fi
if [ "$got" != "$sum" ]; then
  echo "vulncheck: $mod@$version has hash $got, tools/vulndb.version pins $sum" >&2
  exit 1
fi

# The snapshot time is the pseudo-version's timestamp (yyyymmddhhmmss).
ts=$(sed -n 's/^v0\.0\.0-\([0-9]\{14\}\)-.*/\1/p' <<<"$version")
modified=${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}:${ts:10:2}:${ts:12:2}Z

# One cached database per snapshot and generator version.
gen=$(cat tools/vulncheck/main.go tools/go.sum | sha256sum | cut -c1-12)
cache=${LPSEC_VULNDB_CACHE:-$(dirname "$(go env GOCACHE)")/lpsec-vulndb}
db=$cache/$version-$gen
if [ ! -f "$db/index/modules.json" ]; then
  # Databases of other snapshots or generator versions are stale now.
  rm -rf "$cache"/v0.0.0-* "$cache"/vulncheck-*
  go -C tools run ./vulncheck gendb -src "$dir/data/osv" -out "$db" -modified "$modified"
fi

# Build both tools while the network may still be needed for modules.
go tool -modfile=tools/go.mod govulncheck -version >/dev/null
go -C tools build -o "$cache/vulncheck-$gen" ./vulncheck

echo "vulncheck: govulncheck ./... with $(go env GOVERSION), database $mod@$version"
GOPROXY=off go tool -modfile=tools/go.mod govulncheck -db "file://$db" -format json ./... >"$cache/last.json" || {
  echo "vulncheck: govulncheck failed (output in $cache/last.json)" >&2
  exit 1
}
"$cache/vulncheck-$gen" report <"$cache/last.json"
