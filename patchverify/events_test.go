package patchverify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"os/exec"
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

func TestExternalDecompressors(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	mod := signedTestModule(t)
	ctx := context.Background()
	small := []PatchOption{WithMaxFileSize(1 << 20), WithMaxUnpackedSize(4 << 20)}
	for _, tt := range []struct {
		name string
		data []byte
		want error
		why  string
	}{
		{"xz_module_bomb", makeTar(t, file("m.ko.xz", pipeProgram(t, "xz", "xz-utils", make([]byte, 2<<20)))), ErrTooLarge, "decompressed module exceeds"},
		{"zstd_module_bomb", makeTar(t, file("m.ko.zst", pipeProgram(t, "zstd", "zstd", make([]byte, 2<<20)))), ErrTooLarge, "decompressed module exceeds"},
		{"tar_xz_bomb", pipeProgram(t, "xz", "xz-utils", makeTar(t, file("m.ko", mod), file("a", make([]byte, 1<<20)), file("b", make([]byte, 1<<20)), file("c", make([]byte, 1<<20)), file("d", make([]byte, 1<<20)))), ErrTooLarge, "decompressed tarball exceeds"},
		{"corrupt_xz_module", makeTar(t, file("m.ko.xz", mutate(pipeProgram(t, "xz", "xz-utils", mod), func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }))), ErrUnsafeArchive, "xz: corrupt data"},
		{"tar_xz_trailing_garbage", append(pipeProgram(t, "xz", "xz-utils", makeTar(t, file("m.ko", mod))), "garbage"...), ErrUnsafeArchive, "xz: corrupt data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyPatch(ctx, bytes.NewReader(tt.data), sum(tt.data), v, small...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("VerifyPatch = %v, want %v (%q)", err, tt.want, tt.why)
			}
		})
	}
	t.Run("xz_program_missing", func(t *testing.T) {
		data := pipeProgram(t, "xz", "xz-utils", makeTar(t, file("m.ko", mod)))
		t.Setenv("PATH", t.TempDir())
		_, err := VerifyPatch(ctx, bytes.NewReader(data), sum(data), v)
		if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "xz program") {
			t.Fatalf("VerifyPatch = %v, want exec.ErrNotFound naming xz", err)
		}
	})
}
