package patchverify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSecurityEvents(t *testing.T) {
	var logBuf bytes.Buffer
	v, err := NewVerifier([]*x509.Certificate{loadCert(t, "vendor_rsa4096")}, WithLogger(slog.New(slog.NewJSONHandler(&logBuf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	data := buildTestPatch(t)
	ctx := context.Background()
	if _, err := VerifyPatch(ctx, bytes.NewReader(data), sum(data), v); err != nil {
		t.Fatal(err)
	}
	VerifyPatch(ctx, bytes.NewReader(data), sum(nil), v)
	VerifyPatch(ctx, bytes.NewReader([]byte("junk")), sum([]byte("junk")), v)
	v.VerifyModule(readTestdata(t, "fail_embedded_attacker_cert.ko"))

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		ev, _ := rec["event"].(string)
		if r, ok := rec["reason"].(string); ok {
			ev += ":" + r
		}
		got = append(got, ev)
	}
	want := []string{
		"module_signature_verified", "patch_verified",
		"patch_checksum_mismatch",
		"patch_archive_rejected:unsafe_archive",
		"module_signature_rejected:unknown_signer",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}

// TestDecoders runs the in-process xz and zstd decoders on what the xz and
// zstd programs write, and on hostile streams.
func TestDecoders(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	mod := signedTestModule(t)
	ctx := context.Background()
	small := []Option{WithMaxFileSize(1 << 20), WithMaxUnpackedSize(4 << 20)}
	for _, tt := range []struct {
		name string
		data []byte
		want error
		why  string
	}{
		{"xz_module_bomb", makeTar(t, file("m.ko.xz", pipeProgram(t, "xz", "xz-utils", make([]byte, 2<<20)))), ErrTooLarge, "decompressed module exceeds"},
		{"zstd_module_bomb", makeTar(t, file("m.ko.zst", pipeProgram(t, "zstd", "zstd", make([]byte, 2<<20)))), ErrTooLarge, "decompressed module exceeds"},
		{"tar_xz_bomb", pipeProgram(t, "xz", "xz-utils", makeTar(t, file("m.ko", mod), file("a", make([]byte, 1<<20)), file("b", make([]byte, 1<<20)), file("c", make([]byte, 1<<20)), file("d", make([]byte, 1<<20)))), ErrTooLarge, "decompressed tarball exceeds"},
		{"tar_zst_bomb", pipeProgram(t, "zstd", "zstd", makeTar(t, file("m.ko", mod), file("a", make([]byte, 1<<20)), file("b", make([]byte, 1<<20)), file("c", make([]byte, 1<<20)), file("d", make([]byte, 1<<20)))), ErrTooLarge, "decompressed tarball exceeds"},
		{"corrupt_xz_module", makeTar(t, file("m.ko.xz", mutate(pipeProgram(t, "xz", "xz-utils", mod), func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }))), ErrUnsafeArchive, "m.ko.xz"},
		{"corrupt_zstd_module", makeTar(t, file("m.ko.zst", mutate(pipeProgram(t, "zstd", "zstd", mod), func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }))), ErrUnsafeArchive, "m.ko.zst"},
		{"tar_xz_trailing_garbage", append(pipeProgram(t, "xz", "xz-utils", makeTar(t, file("m.ko", mod))), "garbage"...), ErrUnsafeArchive, "xz: no stream footer"},
		{"xz_dictionary_4g", makeTar(t, file("m.ko.xz", xzDict(t, pipeProgram(t, "xz", "xz-utils", mod), 40))), ErrUnsafeArchive, "LZMA2 dictionary of 4294967295 bytes"},
		{"xz_dictionary_128m", makeTar(t, file("m.ko.xz", xzDict(t, pipeProgram(t, "xz", "xz-utils", mod), 30))), ErrUnsafeArchive, "LZMA2 dictionary of 134217728 bytes"},
		{"xz_many_64m_blocks", makeTar(t, file("m.ko.xz", pipeProgram(t, "xz", "xz-utils", noise(64<<10), "-9", "--block-size=4096"))), ErrUnsafeArchive, "dictionaries add up to more than 134217728 bytes"},
		{"xz_bcj_filter", makeTar(t, file("m.ko.xz", pipeProgram(t, "xz", "xz-utils", mod, "--x86", "--lzma2"))), ErrUnsafeArchive, "filter chain other than LZMA2 alone"},
		{"zstd_window_1g", makeTar(t, file("m.ko.zst", pipeProgram(t, "zstd", "zstd", make([]byte, 1<<20), "--long=30", "--ultra", "-22"))), ErrUnsafeArchive, "m.ko.zst"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyPatch(ctx, bytes.NewReader(tt.data), sum(tt.data), v, small...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("VerifyPatch = %v, want %v (%q)", err, tt.want, tt.why)
			}
		})
	}
	t.Run("xz_small_blocks", func(t *testing.T) {
		// Many blocks with small dictionaries are what xz -T writes.
		data := makeTar(t, file("livepatch_6_1_0_18_3.ko.xz", pipeProgram(t, "xz", "xz-utils", mod, "-0", "--block-size=512")), file("metadata.json", testMetaJSON))
		p, err := VerifyPatch(ctx, bytes.NewReader(data), sum(data), v)
		if err != nil || !bytes.Equal(p.Module, mod) {
			t.Fatalf("VerifyPatch = %v", err)
		}
	})
	t.Run("no_programs_needed", func(t *testing.T) {
		xzData := pipeProgram(t, "xz", "xz-utils", makeTar(t, file("livepatch_6_1_0_18_3.ko.zst", pipeProgram(t, "zstd", "zstd", mod)), file("metadata.json", testMetaJSON)))
		t.Setenv("PATH", t.TempDir())
		p, err := VerifyPatch(ctx, bytes.NewReader(xzData), sum(xzData), v)
		if err != nil || !bytes.Equal(p.Module, mod) {
			t.Fatalf("VerifyPatch without xz or zstd on $PATH = %v", err)
		}
	})
}

// xzDict rewrites the LZMA2 dictionary size of the first block of a
// single-block xz file (its CRC32 fixed), as a hostile encoder would write.
func xzDict(t *testing.T, b []byte, bits byte) []byte {
	t.Helper()
	b = bytes.Clone(b)
	hdr := b[12 : 12+(int(b[12])+1)*4]
	// The block header ends with the filter's one property byte, padding
	// and CRC32: find the LZMA2 filter (0x21, 0x01, props).
	i := bytes.Index(hdr, []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	hdr[i+2] = bits
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(hdr[:len(hdr)-4]))
	return b
}

// noise is n deterministic bytes that do not compress.
func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
