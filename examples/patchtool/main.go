// Command patchtool makes and checks what a live-patch vendor ships: a
// module-signing key and certificate, kernel-module signatures in the
// format of the kernel's scripts/sign-file, and patch tarballs.
//
//	go run ./examples/patchtool keygen --key signing-key.pem --cert signing-cert.pem
//	go run ./examples/patchtool sign --key signing-key.pem --cert signing-cert.pem livepatch.ko
//	go run ./examples/patchtool verify --cert signing-cert.pem livepatch.ko
//	go run ./examples/patchtool inspect livepatch.ko
//	go run ./examples/patchtool package --kernel 6.1.0-18-amd64 --version 1 livepatch.ko
//	go run ./examples/patchtool checksum livepatch-6.1.0-18-amd64-1.tar.bz2
//
// verify exits 0 and prints the signer when the signature is valid, 1 and
// the reason when it is not, 2 on usage or I/O errors.
package main

import (
	"context"

	"github.com/lpsec/lpsec/examples/internal/cli"
)

const summary = "patchtool: module-signing keys, kernel-module signatures (sign-file format) and patch tarballs"

func main() {
	cli.Main("patchtool", func(ctx context.Context, args []string) error {
		return cli.Dispatch(ctx, "patchtool", summary, []cli.Subcommand{
			{Name: "keygen", Summary: "make an RSA key and a self-signed module-signing certificate", Run: keygen},
			{Name: "sign", Summary: "append a PKCS#7 module signature, as the kernel's sign-file does", Run: sign},
			{Name: "verify", Summary: "check a module's signature against pinned certificates", Run: verify},
			{Name: "inspect", Summary: "print signer, sig_key and sig_hashalgo as modinfo does", Run: inspect},
			{Name: "package", Summary: "build a patch tarball from metadata and a signed module", Run: pkg},
			{Name: "checksum", Summary: "print the SHA-256 of a patch tarball, as the server sends it", Run: checksum},
		}, args)
	})
}
