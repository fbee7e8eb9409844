package patchverify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/ulikunitz/xz"
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

// benchModule is a 4 MiB module that compresses about as well as a real
// one (small alphabet, runs), with a .modinfo matching benchMeta.
func benchModule(b *testing.B) []byte {
	mod := kmodtest.Livepatch("6.1.0-18", "generic", 3)
	r := rand.New(rand.NewPCG(1, 2))
	for len(mod) < 4<<20 {
		c := byte(r.IntN(24))
		for range 1 + r.IntN(4) {
			mod = append(mod, c)
		}
	}
	return signWith(b, mod[:4<<20], "vendor_rsa4096")
}

// BenchmarkVerifyPatch compares VerifyPatch on a 4 MiB module in each
// format with the sum of its unavoidable parts measured in the same run:
// SHA-256 of the tarball, decoding it (and the module) with the same
// decoders to io.Discard, SHA-512 of the module and one RSA-4096
// verification. The ratio lpsec/parts is the pipeline's overhead.
func BenchmarkVerifyPatch(b *testing.B) {
	mod := benchModule(b)
	s, err := ParseModuleSignature(mod)
	if err != nil {
		b.Fatal(err)
	}
	pub := loadCert(b, "vendor_rsa4096").PublicKey.(*rsa.PublicKey)
	v := newTestVerifier(b, PolicyLivepatch, "vendor_rsa4096")
	const name = "livepatch_6_1_0_18_3.ko"
	tarball := makeTar(b, file("metadata.json", testMetaJSON), file(name, mod))
	var xzBuf bytes.Buffer
	xw, err := xz.NewWriter(&xzBuf)
	if err != nil {
		b.Fatal(err)
	}
	xw.Write(tarball)
	xw.Close()
	ze, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	zmod := ze.EncodeAll(mod, nil)
	cases := []struct {
		name         string
		data         []byte
		outer, inner compression
		innerData    []byte
	}{
		{"tar.bz2", pipeProgram(b, "bzip2", "bzip2", tarball), compBzip2, compNone, nil},
		{"tar.gz", gz(b, tarball), compGzip, compNone, nil},
		{"tar.xz", xzBuf.Bytes(), compXZ, compNone, nil},
		{"tar_ko.zst", makeTar(b, file("metadata.json", testMetaJSON), file(name+".zst", zmod)), compNone, compZstd, zmod},
	}
	ctx := context.Background()
	for _, tc := range cases {
		want := sum(tc.data)
		b.Run(tc.name+"/lpsec", func(b *testing.B) {
			b.SetBytes(int64(len(mod)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := VerifyPatch(ctx, bytes.NewReader(tc.data), want, v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parts", func(b *testing.B) {
			b.SetBytes(int64(len(mod)))
			b.ReportAllocs()
			for b.Loop() {
				sha256.Sum256(tc.data)
				rc, err := decompressor(ctx, tc.outer, tc.data, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, rc)
				rc.Close()
				if tc.inner != compNone {
					rc, _ := decompressor(ctx, tc.inner, tc.innerData, nil)
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				d := sha512.Sum512(s.Content)
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA512, d[:], s.Signature); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyPatchMemory reports VerifyPatch's allocation (B/op) for a
// 16 MiB module in a tar, in a tar.gz and as a .ko.xz, read from a file (hashed, then
// read again: the tarball is never held) and from a reader that cannot
// seek (held in memory, as every reader was before). The module is the
// floor: Patch.Module is returned. Compare B/op with the "module" line.
func BenchmarkVerifyPatchMemory(b *testing.B) {
	mod := kmodtest.Livepatch("6.1.0-18", "generic", 3)
	r := rand.New(rand.NewPCG(3, 4))
	for len(mod) < 16<<20 {
		mod = append(mod, byte(r.IntN(256)))
	}
	mod = signWith(b, mod[:16<<20], "vendor_rsa4096")
	v := newTestVerifier(b, PolicyLivepatch, "vendor_rsa4096")
	tarball := makeTar(b, file("metadata.json", testMetaJSON), file("livepatch_6_1_0_18_3.ko", mod))
	var xzMod bytes.Buffer
	xw, err := xz.NewWriter(&xzMod)
	if err != nil {
		b.Fatal(err)
	}
	xw.Write(mod)
	xw.Close()
	ctx := context.Background()
	b.Run("module", func(b *testing.B) {
		b.SetBytes(int64(len(mod)))
		b.ReportAllocs()
		for b.Loop() {
			_ = append([]byte(nil), mod...)
		}
	})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tar", tarball},
		{"tar.gz", gz(b, tarball)},
		{"tar_ko.xz", makeTar(b, file("metadata.json", testMetaJSON), file("livepatch_6_1_0_18_3.ko.xz", xzMod.Bytes()))},
	} {
		path := b.TempDir() + "/patch"
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			b.Fatal(err)
		}
		want := sum(tc.data)
		for _, how := range []string{"file", "stream"} {
			b.Run(tc.name+"/"+how, func(b *testing.B) {
				b.SetBytes(int64(len(mod)))
				b.ReportAllocs()
				for b.Loop() {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					var src io.Reader = f
					if how == "stream" {
						src = readerOnly{f}
					}
					if _, err := VerifyPatch(ctx, src, want, v); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
			})
		}
	}
}
