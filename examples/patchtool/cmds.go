package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/patchverify"
)

// maxModule bounds what patchtool reads as a module.
const maxModule = 256 << 20

func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One allocation sized from the file, not io.ReadAll's doubling: a
	// 64 MiB module costs 64 MiB, not 168.
	size := int64(512)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > limit {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
		}
		size = fi.Size() + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // only when the file grew
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// writeAtomic writes data to name through a temp file and a rename, so a
// reader never sees half a module.
func writeAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(dirOf(name), ".patchtool-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

func dirOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i+1]
	}
	return "."
}

func keygen(_ context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool keygen", "--key KEY.pem --cert CERT.pem [flags]",
		"Makes an RSA key and a self-signed X.509 certificate for module signing, with the\nextensions of the kernel's certs/default_x509.genkey. The key file is written 0600.")
	key := fs.String("key", "", "private key `file` to write (PEM, PKCS#8)")
	cert := fs.String("cert", "", "certificate `file` to write (PEM)")
	bits := fs.Int("bits", 4096, "RSA key size in `bits` (the live-patch policy needs at least 3072)")
	cn := fs.String("cn", "lpsec example live-patch signing key", "certificate common `name`")
	validity := fs.Duration("validity", 10*365*24*time.Hour, "certificate validity (the kernel does not check it)")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *key == "" || *cert == "" {
		return cli.Usagef("keygen needs --key and --cert")
	}
	if *bits < 2048 || *bits > 8192 {
		return cli.Usagef("--bits must be 2048..8192")
	}
	if !*force {
		for _, f := range []string{*key, *cert} {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("%s exists (use --force to overwrite)", f)
			}
		}
	}
	p, err := pki.NewCodeSigning(*cn, *bits, *validity)
	if err != nil {
		return err
	}
	if err := p.Write(*cert, *key); err != nil {
		return err
	}
	fmt.Printf("wrote %s (RSA-%d private key) and %s (serial %X)\n", *key, *bits, *cert, p.Cert.SerialNumber)
	return nil
}

func parseHash(s string) (crypto.Hash, error) {
	switch strings.ToLower(s) {
	case "sha256":
		return crypto.SHA256, nil
	case "sha384":
		return crypto.SHA384, nil
	case "sha512":
		return crypto.SHA512, nil
	}
	return 0, cli.Usagef("--hash must be sha256, sha384 or sha512, got %q", s)
}

func sign(_ context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool sign", "--key KEY.pem --cert CERT.pem [--hash sha512] [--keyid] MODULE [-o OUT]",
		"Appends a module signature exactly as the kernel's scripts/sign-file does: a detached\nPKCS#7 without certificates or signed attributes, the 12-byte trailer and the magic.\nWithout -o the module is signed in place.")
	key := fs.String("key", "", "private key `file` (PEM)")
	cert := fs.String("cert", "", "certificate `file` (PEM) whose issuer and serial name the signer")
	hashName := fs.String("hash", "sha512", "digest `algorithm`: sha256, sha384 or sha512")
	keyID := fs.Bool("keyid", false, "name the signer by subject key identifier (sign-file -k)")
	out := fs.String("o", "", "output `file` (default: sign MODULE in place)")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("sign needs exactly one MODULE (see patchtool sign -h)")
	}
	if *key == "" || *cert == "" {
		return cli.Usagef("sign needs --key and --cert")
	}
	h, err := parseHash(*hashName)
	if err != nil {
		return err
	}
	signer, err := pki.ReadKey(*key)
	if err != nil {
		return err
	}
	certs, err := pki.ReadCerts(*cert)
	if err != nil {
		return err
	}
	module, err := readBounded(pos[0], maxModule)
	if err != nil {
		return err
	}
	if _, err := patchverify.ParseModuleSignature(module); err == nil {
		return fmt.Errorf("%s is already signed", pos[0])
	}
	opts := []patchverify.Option{patchverify.SignWithHash(h)}
	if *keyID {
		opts = append(opts, patchverify.SignWithKeyID())
	}
	signed, err := patchverify.SignModule(module, signer, certs[0], opts...)
	if err != nil {
		return err
	}
	dst := *out
	if dst == "" {
		dst = pos[0]
	}
	if err := writeAtomic(dst, signed, 0o644); err != nil {
		return err
	}
	fmt.Printf("signed %s -> %s (%s, %d signature bytes)\n", pos[0], dst, strings.ToLower(*hashName), len(signed)-len(module))
	return nil
}

func verify(_ context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool verify", "--cert CERT.pem [--cert ...] [--policy livepatch|kernel] MODULE",
		"Checks a module's appended signature against the pinned certificates only.\n.ko.xz and .ko.zst modules are decompressed first, as the kernel does.\nExit status: 0 valid (the signer is printed), 1 invalid (the reason is printed),\n2 usage or I/O error.")
	var certFiles cli.StringList
	fs.Var(&certFiles, "cert", "pinned certificate `file` (PEM); repeatable")
	policy := fs.String("policy", "livepatch", "`policy`: livepatch (SHA-512, RSA >= 3072) or kernel (what distribution kernels accept)")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("verify needs exactly one MODULE (see patchtool verify -h)")
	}
	if len(certFiles) == 0 {
		return cli.Usagef("verify needs at least one --cert")
	}
	var opts []patchverify.Option
	switch *policy {
	case "livepatch":
		opts = append(opts, patchverify.WithPolicy(patchverify.PolicyLivepatch))
	case "kernel":
		opts = append(opts, patchverify.WithPolicy(patchverify.PolicyKernel))
	default:
		return cli.Usagef("--policy must be livepatch or kernel, got %q", *policy)
	}
	var pinned []*x509.Certificate
	for _, f := range certFiles {
		cs, err := pki.ReadCerts(f)
		if err != nil {
			return &cli.ExitError{Code: cli.ExitUsage, Err: err}
		}
		pinned = append(pinned, cs...)
	}
	v, err := patchverify.NewVerifier(pinned, opts...)
	if err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: err}
	}
	module, err := readModule(pos[0])
	if err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: err}
	}
	s, err := v.VerifyModule(module)
	if err != nil {
		return &cli.ExitError{Code: cli.ExitFailure, Err: fmt.Errorf("%s: signature NOT valid: %w", pos[0], err)}
	}
	fmt.Printf("%s: signature valid\nsigner: %s\nsig_key: %s\nsig_hashalgo: %s\ncertificate: %s\n",
		pos[0], s.Signature.SignerName(), s.Signature.KeyID(), s.Signature.HashName(), s.Certificate.Subject)
	return nil
}

func inspect(_ context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool inspect", "MODULE",
		"Prints the signature fields kmod's modinfo shows (signer, sig_key, sig_hashalgo),\nwithout verifying anything.")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("inspect needs exactly one MODULE")
	}
	module, err := readModule(pos[0])
	if err != nil {
		return err
	}
	sig, err := patchverify.ParseModuleSignature(module)
	if errors.Is(err, patchverify.ErrUnsigned) {
		fmt.Printf("filename: %s\nsigned: no\n", pos[0])
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("filename: %s\nsig_id: PKCS#7\nsigner: %s\nsig_key: %s\nsig_hashalgo: %s\n",
		pos[0], sig.SignerName(), sig.KeyID(), sig.HashName())
	return nil
}

func checksum(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool checksum", "[--expect SHA256] FILE...",
		"Prints the SHA-256 of each file in sha256sum's format: the value a server sends\nbeside a patch URL. With --expect (one FILE), checks the file against it instead,\nas a client does (streamed, size-bounded, constant-time): exit 0 if it matches, 1 if not.")
	expect := fs.String("expect", "", "expected SHA-256 (64 hex digits)")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cli.Usagef("checksum needs at least one FILE")
	}
	if *expect != "" {
		if len(pos) != 1 {
			return cli.Usagef("--expect takes exactly one FILE")
		}
		f, err := os.Open(pos[0])
		if err != nil {
			return &cli.ExitError{Code: cli.ExitUsage, Err: err}
		}
		defer f.Close()
		n, err := patchverify.VerifyChecksum(ctx, f, *expect, patchverify.WithMaxPatchSize(maxModule))
		if err != nil {
			return &cli.ExitError{Code: cli.ExitFailure, Err: fmt.Errorf("%s: %w", pos[0], err)}
		}
		fmt.Printf("%s: OK (%d bytes)\n", pos[0], n)
		return nil
	}
	for _, name := range pos {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s  %s\n", hex.EncodeToString(h.Sum(nil)), name)
	}
	return nil
}
