#!/usr/bin/env bash
# gen.sh regenerates the signature vectors in this directory from the test
# keys and certificates beside it (made once with `openssl req -x509`, see
# keys.txt). The tests also run openssl and sign-file live; these committed
# vectors let the tests and fuzz seeds work without either.
#
#   good_module_unsigned.ko   tiny ELF with a .modinfo section (gcc -c module.c), so modinfo reads it
#   good_signfile_*.ko        the kernel's scripts/sign-file, with and without -k
#   fail_*.ko                 openssl cms output a kernel refuses or lpsec must refuse, with the trailer appended
#   good_livepatch_unsigned.ko  internal/kmodtest.Livepatch("6.1.0-18", "generic", 3): a module whose
#                             .modinfo agrees with the metadata of good_patch_gnutar.tar.bz2
#   fail_metadata_kernel_mismatch.tar.bz2  the same tarball around good_module_unsigned.ko, whose
#                             vermagic (6.1.0) and name disagree with its metadata
set -euo pipefail
cd "$(dirname "$0")"
SF=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
mod=good_module_unsigned.ko
trailer() { # trailer SIGLEN: the 12-byte struct module_signature (id_type 2) and the magic
  printf '\x00\x00\x02\x00\x00\x00\x00\x00'
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(( $1 >> 24 & 255 )) $(( $1 >> 16 & 255 )) $(( $1 >> 8 & 255 )) $(( $1 & 255 )))"
  printf '~Module signature appended~\n'
}
cms_append() { # cms_append OUT openssl-cms-args...: module + CMS + trailer
  local out=$1; shift
  openssl cms -sign -binary -outform DER -in "$mod" -out "$out.der" "$@"
  { cat "$mod" "$out.der"; trailer "$(stat -c %s "$out.der")"; } > "$out"
  rm -f "$out.der"
}
"$SF" sha512 vendor_rsa4096.key vendor_rsa4096.crt "$mod" good_signfile_rsa4096_sha512.ko
"$SF" -k sha512 vendor_rsa4096.key vendor_rsa4096.crt "$mod" good_signfile_rsa4096_sha512_keyid.ko
"$SF" sha512 vendor_rsa3072.key vendor_rsa3072.crt "$mod" good_signfile_rsa3072_sha512.ko
"$SF" sha256 ecdsa_p256.key ecdsa_p256.crt "$mod" good_signfile_ecdsa_p256_sha256.ko
"$SF" sha384 ecdsa_p384.key ecdsa_p384.crt "$mod" good_signfile_ecdsa_p384_sha384.ko
"$SF" sha512 short_rsa2048.key short_rsa2048.crt "$mod" fail_rsa2048_sha512.ko
cms_append fail_sha1.ko -noattr -nocerts -nosmimecap -md sha1 -signer vendor_rsa4096.crt -inkey vendor_rsa4096.key
cms_append fail_signed_attributes.ko -nocerts -nosmimecap -md sha512 -signer vendor_rsa4096.crt -inkey vendor_rsa4096.key
cms_append fail_two_signers.ko -noattr -nocerts -nosmimecap -md sha512 -signer vendor_rsa4096.crt -inkey vendor_rsa4096.key -signer vendor_rsa3072.crt -inkey vendor_rsa3072.key
cms_append fail_embedded_attacker_cert.ko -noattr -nosmimecap -md sha512 -signer attacker_rsa4096.crt -inkey attacker_rsa4096.key
# An impostor: the attacker's key in a certificate that copies the pinned
# vendor certificate's issuer, serial and subject key identifier, embedded in
# the signature. Only a verifier that trusts embedded certificates accepts it.
serial=$(openssl x509 -in vendor_rsa4096.crt -noout -serial | cut -d= -f2)
skid=$(openssl x509 -in vendor_rsa4096.crt -noout -ext subjectKeyIdentifier | tail -n1 | tr -d ' ')
openssl req -new -x509 -key attacker_rsa4096.key -sha512 -days 36500 -set_serial "0x$serial" \
  -subj "/CN=lpsec test live-patch signing/O=lpsec test" -addext "subjectKeyIdentifier=$skid" -out impostor.crt.tmp
cms_append fail_embedded_impostor_cert.ko -noattr -nosmimecap -md sha512 -signer impostor.crt.tmp -inkey attacker_rsa4096.key
cms_append fail_embedded_impostor_cert_keyid.ko -keyid -noattr -nosmimecap -md sha512 -signer impostor.crt.tmp -inkey attacker_rsa4096.key
rm -f impostor.crt.tmp
# A message that carries the module inside instead of being detached.
cms_append fail_attached_content.ko -nodetach -noattr -nocerts -nosmimecap -md sha512 -signer vendor_rsa4096.crt -inkey vendor_rsa4096.key
# A real tar.bz2 as GNU tar and bzip2 make it, with a top directory, and a
# bzip2 bomb: 32 entries of 32 MiB of zeros (1 GiB) in a few KiB, each entry
# under the per-file bound, the whole far over the decompressed bound.
tmp=$(mktemp -d)
mkdir "$tmp/livepatch-6.1.0-18-generic-3-x86_64"
printf '{"kernel":"6.1.0-18","flavour":"generic","version":3,"architecture":"x86_64","module":"livepatch_6_1_0_18_3.ko"}\n' > "$tmp/livepatch-6.1.0-18-generic-3-x86_64/metadata.json"
cp good_signfile_rsa4096_sha512.ko "$tmp/livepatch-6.1.0-18-generic-3-x86_64/livepatch_6_1_0_18_3.ko"
tar --format=ustar --owner=0 --group=0 --mtime=@0 --sort=name -C "$tmp" -cf - livepatch-6.1.0-18-generic-3-x86_64 | bzip2 -9 > fail_metadata_kernel_mismatch.tar.bz2
"$SF" sha512 vendor_rsa4096.key vendor_rsa4096.crt good_livepatch_unsigned.ko "$tmp/livepatch-6.1.0-18-generic-3-x86_64/livepatch_6_1_0_18_3.ko"
tar --format=ustar --owner=0 --group=0 --mtime=@0 --sort=name -C "$tmp" -cf - livepatch-6.1.0-18-generic-3-x86_64 | bzip2 -9 > good_patch_gnutar.tar.bz2
rm -rf "$tmp"
python3 - <<'PY' | bzip2 -9 > fail_bomb_1g.tar.bz2
import sys, tarfile
class Zeros:
    def __init__(self, n): self.n = n
    def read(self, k=-1):
        k = self.n if k < 0 else min(k, self.n)
        self.n -= k
        return bytes(k)
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.USTAR_FORMAT) as tf:
    for i in range(32):
        ti = tarfile.TarInfo("zeros%02d" % i); ti.size = 32 << 20
        tf.addfile(ti, Zeros(ti.size))
PY
