#!/usr/bin/env bash
# debian-peers.sh [--install]
#
# The Debian packages the tests use as peers or tools. Without arguments it
# lists the missing ones (the tests that need them skip, naming the package;
# with CI=true they fail). With --install it installs them (root and apt);
# .ci/run and `make deps` do that.
#
#   apache2-utils          htpasswd (auth: real bcrypt/MD5/SHA/crypt hashes)
#   argon2                 argon2 CLI (auth: real argon2id hashes)
#   python3-macaroonbakery Python macaroon implementation (macaroon interop)
#   linux-kbuild-6.1       the kernel's scripts/sign-file (patchverify)
#   kmod                   modinfo (patchtool inspect)
#   openssl curl           TLS and CMS peers
#   sslscan                TLS server scan (tlsconfig)
#   xz-utils zstd bzip2    peers that write the compressed modules and tarballs the
#                          in-process decoders (patchverify) are tested on
#   systemd                systemd-id128 (report known answers)
#   postgresql             throwaway clusters for the token/macaroon stores
#   wrk time               bench/ scripts
set -euo pipefail
pkgs=(apache2-utils argon2 python3-macaroonbakery linux-kbuild-6.1 kmod openssl curl sslscan xz-utils zstd bzip2 systemd postgresql wrk time)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "debian-peers: all ${#pkgs[@]} packages present"
  exit 0
fi
if [ "${1:-}" != "--install" ]; then
  echo "debian-peers: missing ${missing[*]}: the tests that need them skip (fail with CI=true); install with 'make deps' (root and apt)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debian-peers: installing ${missing[*]} needs root" >&2
  exit 1
fi
echo "debian-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
