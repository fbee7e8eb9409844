package patchverify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/kmodtest"
)

// Fuzz targets need no network, PostgreSQL or external program: every
// decoder runs in process. Seeds made by the xz and zstd programs are
// committed under testdata/fuzz.

func addTestdataSeeds(f *testing.F, suffix string) {
	names, err := filepath.Glob(filepath.Join("testdata", "*"+suffix))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "bomb") {
			continue // too slow per iteration; the table test covers it
		}
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseModuleSignature(f *testing.F) {
	addTestdataSeeds(f, ".ko")
	f.Add([]byte(moduleSigMagic))
	f.Fuzz(func(t *testing.T, module []byte) {
		s, err := ParseModuleSignature(module)
		if err != nil {
			if s != nil {
				t.Fatal("signature returned with an error")
			}
			if r := reason(err); r != "unsigned" && r != "malformed_signature" {
				t.Fatalf("unexpected error class %q: %v", r, err)
			}
			return
		}
		if len(s.Content) == 0 || len(s.Content)+len(s.PKCS7)+trailerLen != len(module) {
			t.Fatalf("content %d + pkcs7 %d + trailer != %d", len(s.Content), len(s.PKCS7), len(module))
		}
		if (s.SerialNumber == nil) == (s.SubjectKeyID == nil) {
			t.Fatal("signer must be named by exactly one of issuer+serial and key id")
		}
		_, _, _ = s.SignerName(), s.KeyID(), s.HashName()
	})
}

// FuzzVerifyModule fuzzes the PKCS#7 message under a fixed module, so that
// mutations land in the DER the verifier walks.
func FuzzVerifyModule(f *testing.F) {
	for _, n := range []string{"good_signfile_rsa4096_sha512.ko", "good_signfile_rsa4096_sha512_keyid.ko", "good_signfile_ecdsa_p384_sha384.ko",
		"fail_signed_attributes.ko", "fail_two_signers.ko", "fail_embedded_impostor_cert.ko", "fail_sha1.ko"} {
		b := readTestdata(f, n)
		end := len(b) - trailerLen
		f.Add(b[end-int(binary.BigEndian.Uint32(b[end+8:])) : end])
	}
	mod := testModule(f)
	v := newTestVerifier(f, PolicyKernel, "vendor_rsa4096", "ecdsa_p384", "attacker_rsa4096")
	f.Fuzz(func(t *testing.T, der []byte) {
		s, err := v.VerifyModule(rewrap(mod, der))
		if err != nil {
			if s != nil {
				t.Fatal("signer returned with an error")
			}
			if reason(err) == "other" {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if !bytes.Equal(s.Signature.Content, mod) {
			t.Fatal("verified content is not the module")
		}
	})
}

func FuzzVerifyPatch(f *testing.F) {
	addTestdataSeeds(f, ".bz2")
	f.Add(buildTestPatch(f))
	f.Add(makeTar(f, file("m.ko", signedTestModule(f)), file("metadata.json", []byte(`{"version":2}`))))
	f.Add(makeTar(f, file("m.ko.gz", gz(f, signedTestModule(f)))))
	v := newTestVerifier(f, PolicyLivepatch, "vendor_rsa4096")
	opts := []Option{WithMaxEntries(16), WithMaxFileSize(256 << 10), WithMaxUnpackedSize(1 << 20)}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := VerifyPatch(context.Background(), bytes.NewReader(data), sum(data), v, opts...)
		// Read twice from a seeker or once into memory: the same verdict.
		p2, err2 := VerifyPatch(context.Background(), readerOnly{bytes.NewReader(data)}, sum(data), v, opts...)
		if (err == nil) != (err2 == nil) || reason(err) != reason(err2) || (p2 != nil && !bytes.Equal(p.Module, p2.Module)) {
			t.Fatalf("seeker: %v; stream: %v", err, err2)
		}
		if err != nil {
			if p != nil {
				t.Fatal("patch returned with an error")
			}
			if reason(err) == "other" {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if _, err := v.VerifyModule(p.Module); err != nil {
			t.Fatalf("returned module does not verify: %v", err)
		}
	})
}

func FuzzReadModuleInfo(f *testing.F) {
	addTestdataSeeds(f, ".ko")
	f.Add(kmodtest.Livepatch("6.1.0-18", "generic", 3))
	f.Add(kmodtest.Module("name=x", "name=y"))
	f.Fuzz(func(t *testing.T, module []byte) {
		info, err := ReadModuleInfo(module)
		if err != nil {
			if info != nil || !errors.Is(err, ErrMalformedModule) {
				t.Fatalf("ReadModuleInfo = %+v, %v", info, err)
			}
			return
		}
		if info.Name == "" || info.Release() == "" || strings.ContainsFunc(info.Name+info.Vermagic+info.Version, unsafeRune) {
			t.Fatalf("accepted %+v", info)
		}
	})
}

// FuzzDecompressModule feeds the xz and zstd decoders (and gzip) hostile
// streams under a small output bound: a sentinel or data, never a panic,
// never more than the bound.
func FuzzDecompressModule(f *testing.F) {
	for _, n := range []string{"m.ko.xz", "m.ko.zst", "m.ko.gz"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz-seed-"+n))
		if err == nil {
			f.Add(n, b)
		}
	}
	f.Add("m.ko.gz", gz(f, []byte("module")))
	f.Add("m.ko.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4, 0xe6, 0xd6, 0xb4, 0x46})
	f.Add("m.ko.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00, 0x01, 0x00, 0x00})
	cfg, err := build("fuzz", forPatch, []Option{WithMaxFileSize(1 << 20)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if moduleCompression(name) == compUnknown {
			return
		}
		out, err := decompressModule(context.Background(), name, data, cfg)
		if err != nil {
			if out != nil || (!errors.Is(err, ErrUnsafeArchive) && !errors.Is(err, ErrTooLarge)) {
				t.Fatalf("decompressModule = %d bytes, %v", len(out), err)
			}
			return
		}
		if int64(len(out)) > cfg.maxFileSize {
			t.Fatalf("%d bytes past the bound", len(out))
		}
	})
}
