// Command patchverify-decode is the helper of bench/patchverify-decode.sh.
//
//	patchverify-decode module SIZE OUT      writes a SIZE-byte module that compresses like a real one
//	patchverify-decode decode FILE N        decodes FILE N times in process, prints seconds per run
//	patchverify-decode patch SIZE DIR       writes DIR/patch.tar.gz (signed SIZE-byte module), DIR/cert.pem, prints its SHA-256
//	patchverify-decode verify FILE SHA CERT runs patchverify.VerifyPatch on FILE
//
// decode uses what VerifyPatch uses: compress/bzip2 for bzip2, and
// patchverify.DecompressModule (gzip, ulikunitz/xz, klauspost zstd) for the rest.
package main

import (
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/lpsec/lpsec/patchverify"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "patchverify-decode:", err)
		os.Exit(1)
	}
}

// module is a kmodtest live patch padded to size with runs over a small
// alphabet: gzip -9 makes it about a third of its size, as real modules.
func module(size int) []byte {
	mod := kmodtest.Livepatch("6.1.0-18", "generic", 1)
	r := mrand.New(mrand.NewPCG(1, 2))
	for len(mod) < size {
		c := byte(r.IntN(24))
		for range 1 + r.IntN(4) {
			mod = append(mod, c)
		}
	}
	return mod[:size]
}

func run(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: module SIZE OUT | decode FILE N | patch SIZE DIR | verify FILE SHA CERT")
	}
	switch args[0] {
	case "module":
		size, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		return os.WriteFile(args[2], module(size), 0o644)
	case "decode":
		data, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		start := time.Now()
		for range n {
			if bytes.HasPrefix(data, []byte("BZh")) {
				if _, err := io.Copy(io.Discard, bzip2.NewReader(bytes.NewReader(data))); err != nil {
					return err
				}
				continue
			}
			if _, err := patchverify.DecompressModule(context.Background(), data, patchverify.WithMaxFileSize(1<<30)); err != nil {
				return err
			}
		}
		fmt.Printf("%.4f\n", time.Since(start).Seconds()/float64(n))
		return nil
	case "patch":
		size, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		key, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), SubjectKeyId: []byte{1, 2, 3, 4}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return err
		}
		cert, _ := x509.ParseCertificate(der)
		signed, err := patchverify.SignModule(module(size), key, cert)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		meta := patchverify.Metadata{Kernel: "6.1.0-18", Flavour: "generic", Version: 1, Architecture: "x86_64", Module: kmodtest.LivepatchName("6.1.0-18", 1) + ".ko"}
		if err := patchverify.BuildPatch(&buf, meta, signed); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(args[2], "patch.tar.gz"), buf.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(args[2], "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		fmt.Println(hex.EncodeToString(sum[:]))
		return nil
	case "verify":
		if len(args) != 4 {
			return fmt.Errorf("verify FILE SHA CERT")
		}
		pemData, err := os.ReadFile(args[3])
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(pemData)
		if blk == nil {
			return fmt.Errorf("%s: no PEM", args[3])
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return err
		}
		v, err := patchverify.NewVerifier([]*x509.Certificate{cert}, patchverify.WithPolicy(patchverify.PolicyKernel))
		if err != nil {
			return err
		}
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		p, err := patchverify.VerifyPatch(context.Background(), f, args[2], v, patchverify.WithMaxFileSize(1<<30), patchverify.WithMaxUnpackedSize(1<<30), patchverify.WithMaxPatchSize(1<<30))
		if err != nil {
			return err
		}
		fmt.Printf("verified %d-byte module\n", len(p.Module))
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
