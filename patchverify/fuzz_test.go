package patchverify

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets need no network, PostgreSQL or external program: xz and zstd
// decompression is switched off in FuzzVerifyPatch.

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
