package patchverify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"testing"
)

// BenchmarkChecksum compares the streaming, bounded, cancellable checksum
// with crypto/sha256 over the same bytes.
func BenchmarkChecksum(b *testing.B) {
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sum(data)
	b.Run("lpsec", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := VerifyChecksum(context.Background(), bytes.NewReader(data), want); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			h := sha256.New()
			h.Write(data)
			h.Sum(nil)
		}
	})
}

// BenchmarkVerifyModule compares VerifyModule on a 4 MiB module with what it
// cannot avoid: SHA-512 of the content and one RSA-4096 verification.
func BenchmarkVerifyModule(b *testing.B) {
	mod := make([]byte, 4<<20)
	for i := range mod {
		mod[i] = byte(i * 13)
	}
	signed := signWith(b, mod, "vendor_rsa4096")
	v := newTestVerifier(b, PolicyLivepatch, "vendor_rsa4096")
	s, err := ParseModuleSignature(signed)
	if err != nil {
		b.Fatal(err)
	}
	pub := loadCert(b, "vendor_rsa4096").PublicKey.(*rsa.PublicKey)
	b.Run("lpsec", func(b *testing.B) {
		b.SetBytes(int64(len(mod)))
		for b.Loop() {
			if _, err := v.VerifyModule(signed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(mod)))
		for b.Loop() {
			d := sha512.Sum512(s.Content)
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA512, d[:], s.Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
}
