package patchverify

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/testenv"
)

type entry struct {
	name     string
	typeflag byte
	data     []byte
	size     int64 // header size when different from len(data), for truncation
	link     string
	pax      map[string]string
}

func file(name string, data []byte) entry {
	return entry{name: name, typeflag: tar.TypeReg, data: data}
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.data))
		if e.size != 0 {
			size = e.size
		}
		if e.typeflag != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Size: size, Mode: 0o644, Linkname: e.link, PAXRecords: e.pax, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil && e.size == 0 {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		// Truncated entries leave the writer unhappy; the bytes are what we want.
		if !strings.Contains(err.Error(), "missed writing") {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pipeProgram compresses b with an external program (bzip2, xz, zstd).
func pipeProgram(t testing.TB, prog, pkg string, b []byte, args ...string) []byte {
	t.Helper()
	p := testenv.LookPath(t, prog, pkg)
	cmd := exec.Command(p, append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return out
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signedTestModule is good_livepatch_unsigned.ko signed by the vendor: its
// .modinfo agrees with testMeta.
func signedTestModule(t testing.TB) []byte {
	t.Helper()
	return signWith(t, readTestdata(t, "good_livepatch_unsigned.ko"), "vendor_rsa4096")
}

var testMetaJSON = []byte(`{"kernel":"6.1.0-18","flavour":"generic","version":3,"module":"livepatch_6_1_0_18_3.ko"}`)

var testMeta = Metadata{Kernel: "6.1.0-18", Flavour: "generic", Version: 3, Architecture: "x86_64", Module: "livepatch_6_1_0_18_3.ko"}

func buildTestPatch(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := BuildPatch(&buf, testMeta, signedTestModule(t)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyPatchGood(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	mod := signedTestModule(t)
	built := buildTestPatch(t)
	tarOf := func(modName string, modData []byte) []byte {
		return makeTar(t, entry{name: "p/", typeflag: tar.TypeDir}, file("p/metadata.json", testMetaJSON), file("p/"+modName, modData))
	}
	cases := map[string]struct {
		data    []byte
		modName string
	}{
		"buildpatch_tar_gz":  {built, testMeta.Module},
		"gnutar_bzip2":       {readTestdata(t, "good_patch_gnutar.tar.bz2"), "livepatch-6.1.0-18-generic-3-x86_64/livepatch_6_1_0_18_3.ko"},
		"plain_tar":          {tarOf("livepatch_6_1_0_18_3.ko", mod), "p/livepatch_6_1_0_18_3.ko"},
		"module_ko_gz":       {gz(t, tarOf("livepatch_6_1_0_18_3.ko.gz", gz(t, mod))), "p/livepatch_6_1_0_18_3.ko"},
		"dot_slash_names":    {makeTar(t, entry{name: "./", typeflag: tar.TypeDir}, file("./m.ko", mod)), "m.ko"},
		"uppercase_checksum": {built, testMeta.Module},
	}
	if testing.Short() {
		t.Log("external compressors skipped in -short mode")
	} else {
		cases["tar_bz2_bzip2"] = struct {
			data    []byte
			modName string
		}{pipeProgram(t, "bzip2", "bzip2", tarOf("livepatch_6_1_0_18_3.ko", mod)), "p/livepatch_6_1_0_18_3.ko"}
		cases["tar_xz_module_ko_xz"] = struct {
			data    []byte
			modName string
		}{pipeProgram(t, "xz", "xz-utils", tarOf("livepatch_6_1_0_18_3.ko.xz", pipeProgram(t, "xz", "xz-utils", mod))), "p/livepatch_6_1_0_18_3.ko"}
		cases["module_ko_zst"] = struct {
			data    []byte
			modName string
		}{gz(t, tarOf("livepatch_6_1_0_18_3.ko.zst", pipeProgram(t, "zstd", "zstd", mod))), "p/livepatch_6_1_0_18_3.ko"}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := sum(tc.data)
			if name == "uppercase_checksum" {
				want = strings.ToUpper(want)
			}
			for how, r := range readers(tc.data) {
				p, err := VerifyPatch(context.Background(), r(), want, v)
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if !bytes.Equal(p.Module, mod) || p.ModuleName != tc.modName || p.SHA256 != sum(tc.data) {
					t.Errorf("%s: module %q (%d bytes), sha %s", how, p.ModuleName, len(p.Module), p.SHA256)
				}
				if p.Metadata == nil || p.Metadata.Version != 3 {
					if name != "dot_slash_names" {
						t.Errorf("%s: metadata %+v", how, p.Metadata)
					}
				}
				if !p.Signer.Certificate.Equal(loadCert(t, "vendor_rsa4096")) {
					t.Errorf("%s: wrong signer", how)
				}
			}
		})
	}
}

func TestBuildPatchReproducible(t *testing.T) {
	a, b := buildTestPatch(t), buildTestPatch(t)
	if !bytes.Equal(a, b) {
		t.Error("BuildPatch output differs between runs")
	}
	p, err := VerifyPatch(context.Background(), bytes.NewReader(a), sum(a), newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096"))
	if err != nil {
		t.Fatal(err)
	}
	if *p.Metadata != testMeta {
		t.Errorf("metadata round trip: %+v", *p.Metadata)
	}
	for _, m := range []Metadata{{}, {Module: "../x.ko"}, {Module: "a/b.ko"}, {Module: "x.ko.xz"}, {Module: "x"}} {
		if err := BuildPatch(new(bytes.Buffer), m, signedTestModule(t)); err == nil {
			t.Errorf("BuildPatch accepted module name %q", m.Module)
		}
	}
	if err := BuildPatch(new(bytes.Buffer), testMeta, testModule(t)); !errors.Is(err, ErrUnsigned) {
		t.Errorf("BuildPatch of an unsigned module: %v", err)
	}
}

func TestVerifyPatchHostile(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	mod := signedTestModule(t)
	meta := file("metadata.json", []byte(`{"version":1}`))
	small := []Option{WithMaxEntries(8), WithMaxFileSize(64 << 10), WithMaxUnpackedSize(256 << 10)}
	// retype changes the type of the header at offset off and fixes its
	// checksum: for entry types tar.Writer will not write.
	retype := func(b []byte, off int, flag byte, gnu bool) []byte {
		h := b[off : off+512]
		h[156] = flag
		if gnu {
			copy(h[257:265], "ustar  \x00") // old GNU format, which type 'S' needs
		}
		copy(h[148:156], "        ")
		var c int64
		for _, x := range h {
			c += int64(x)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", c))
		return b
	}
	blocks := func(n int) int { return 512 * ((n + 511) / 512) }
	paxRecords := "26 GNU.sparse.numblocks=1\n22 GNU.sparse.map=0,1\n21 GNU.sparse.size=1\n"
	gnuSparse := retype(makeTar(t, file("m.ko", mod), file("s", []byte("x"))), 512+blocks(len(mod)), tar.TypeGNUSparse, true)
	paxSparse := retype(makeTar(t, file("m.ko", mod), file("PaxHeaders/s", []byte(paxRecords)), file("s", []byte("x"))), 512+blocks(len(mod)), tar.TypeXHeader, false)
	manyEntries := []entry{file("m.ko", mod)}
	for i := 0; i < 9; i++ {
		manyEntries = append(manyEntries, file("f"+strconv.Itoa(i), nil))
	}
	signedByAttacker := signWith(t, testModule(t), "attacker_rsa4096")
	var bombLimits []Option // the defaults: 128 MiB of the bomb's 1 GiB are decoded
	if raceEnabled {
		bombLimits = []Option{WithMaxUnpackedSize(16 << 20)}
	}

	tests := []struct {
		name string
		data []byte
		opts []Option
		want error
		why  string // part of the message: the attack named is what was caught
	}{
		{"absolute_path", makeTar(t, file("/lib/modules/m.ko", mod)), nil, ErrUnsafeArchive, "absolute name"},
		{"dotdot", makeTar(t, file("../m.ko", mod)), nil, ErrUnsafeArchive, "has a \"..\" element"},
		{"dotdot_inside", makeTar(t, file("a/../../m.ko", mod)), nil, ErrUnsafeArchive, "has a \"..\" element"},
		{"dotdot_directory", makeTar(t, entry{name: "../", typeflag: tar.TypeDir}, file("m.ko", mod)), nil, ErrUnsafeArchive, "has a \"..\" element"},
		{"backslash", makeTar(t, file(`..\m.ko`, mod)), nil, ErrUnsafeArchive, "has a backslash"},
		{"control_character", makeTar(t, file("m.ko", mod), file("x\x1b[2Jy", nil)), nil, ErrUnsafeArchive, "has a control character"},
		{"newline_in_name", makeTar(t, file("m.ko", mod), file("x\nevent=patch_verified", nil)), nil, ErrUnsafeArchive, "has a control character"},
		{"not_canonical", makeTar(t, file("a//m.ko", mod)), nil, ErrUnsafeArchive, "is not canonical"},
		{"duplicate_name", makeTar(t, file("m.ko", mod), meta, meta), nil, ErrUnsafeArchive, "duplicate name \"metadata.json\""},
		{"duplicate_name_case", makeTar(t, file("m.ko", mod), file("README", nil), file("readme", nil)), nil, ErrUnsafeArchive, "duplicate name \"readme\""},
		{"duplicate_file_and_dir", makeTar(t, file("m.ko", mod), file("d", nil), entry{name: "d/", typeflag: tar.TypeDir}), nil, ErrUnsafeArchive, "duplicate name \"d\""},
		{"file_over_directory", makeTar(t, file("m.ko", mod), file("d/x", nil), file("D", nil)), nil, ErrUnsafeArchive, "has the name of a directory"},
		{"file_inside_file", makeTar(t, file("m.ko", mod), file("d", nil), file("d/x", nil)), nil, ErrUnsafeArchive, "is inside file"},
		{"symlink", makeTar(t, file("m.ko", mod), entry{name: "l", typeflag: tar.TypeSymlink, link: "/etc/shadow"}), nil, ErrUnsafeArchive, "is a symlink"},
		{"symlink_module", makeTar(t, entry{name: "m.ko", typeflag: tar.TypeSymlink, link: "/lib/modules/x.ko"}), nil, ErrUnsafeArchive, "is a symlink"},
		{"hardlink", makeTar(t, file("m.ko", mod), entry{name: "h", typeflag: tar.TypeLink, link: "m.ko"}), nil, ErrUnsafeArchive, "is a hardlink"},
		{"char_device", makeTar(t, file("m.ko", mod), entry{name: "c", typeflag: tar.TypeChar}), nil, ErrUnsafeArchive, "is a character device"},
		{"block_device", makeTar(t, file("m.ko", mod), entry{name: "b", typeflag: tar.TypeBlock}), nil, ErrUnsafeArchive, "is a block device"},
		{"fifo", makeTar(t, file("m.ko", mod), entry{name: "f", typeflag: tar.TypeFifo}), nil, ErrUnsafeArchive, "is a FIFO"},
		{"gnu_sparse", gnuSparse, nil, ErrUnsafeArchive, "is a sparse file"},
		{"pax_sparse", paxSparse, nil, ErrUnsafeArchive, "is a sparse file"},
		{"no_module", makeTar(t, meta), nil, ErrUnsafeArchive, "no kernel module"},
		{"two_modules", makeTar(t, file("a.ko", mod), file("b.ko", mod)), nil, ErrUnsafeArchive, "more than one module"},
		{"module_and_compressed_module", makeTar(t, file("a.ko", mod), file("a.ko.gz", gz(t, mod))), nil, ErrUnsafeArchive, "more than one module"},
		{"ko_xz_holding_gzip", makeTar(t, file("m.ko.xz", gz(t, mod))), nil, ErrUnsafeArchive, "does not hold xz data"},
		{"metadata_names_other_module", makeTar(t, file("m.ko", mod), file("metadata.json", []byte(`{"module":"other.ko"}`))), nil, ErrUnsafeArchive, "metadata names module"},
		{"metadata_not_json", makeTar(t, file("m.ko", mod), file("metadata.json", []byte(`{`))), nil, ErrUnsafeArchive, "metadata.json:"},
		{"two_metadata", makeTar(t, file("m.ko", mod), meta, file("x/metadata.json", nil)), nil, ErrUnsafeArchive, "more than one metadata.json"},
		{"not_an_archive", []byte("this is not a tarball at all, but it is long enough to sniff"), nil, ErrUnsafeArchive, "not a tar, tar.gz, tar.bz2, tar.xz or tar.zst archive"},
		{"corrupt_gzip", mutate(gz(t, makeTar(t, file("m.ko", mod))), func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }), nil, ErrUnsafeArchive, "gzip: invalid checksum"},
		{"truncated_tar", makeTar(t, entry{name: "m.ko", typeflag: tar.TypeReg, data: mod[:100], size: int64(len(mod))}), nil, ErrUnsafeArchive, "corrupt archive: unexpected EOF"},
		{"truncated_gzip", gz(t, makeTar(t, file("m.ko", mod)))[:300], nil, ErrUnsafeArchive, "corrupt archive: unexpected EOF"},
		{"too_many_entries", makeTar(t, manyEntries...), small, ErrTooLarge, "more than 8 entries"},
		{"entry_too_large", makeTar(t, file("m.ko", mod), file("big", make([]byte, 65<<10))), small, ErrTooLarge, "\"big\" is 66560 bytes"},
		{"entry_header_claims_huge", makeTar(t, entry{name: "m.ko", typeflag: tar.TypeReg, data: mod, size: 1 << 40}), nil, ErrTooLarge, "\"m.ko\" is 1099511627776 bytes"},
		{"total_too_large", makeTar(t, file("m.ko", mod), file("a", make([]byte, 60<<10)), file("b", make([]byte, 60<<10)), file("c", make([]byte, 60<<10)), file("d", make([]byte, 60<<10)), file("e", make([]byte, 60<<10))), small, ErrTooLarge, "decompressed tarball exceeds"},
		{"patch_too_large", makeTar(t, file("m.ko", mod)), []Option{WithMaxPatchSize(1024)}, ErrTooLarge, "patch is larger than 1024 bytes"},
		{"gzip_bomb_module", gz(t, makeTar(t, file("m.ko.gz", gz(t, make([]byte, 1<<20))))), small, ErrTooLarge, "decompressed module exceeds"},
		{"bzip2_bomb_1g", readTestdata(t, "fail_bomb_1g.tar.bz2"), bombLimits, ErrTooLarge, "decompressed tarball exceeds"},
		{"unsigned_module", makeTar(t, file("m.ko", testModule(t))), nil, ErrUnsigned, ""},
		{"module_signed_by_attacker", makeTar(t, file("m.ko", signedByAttacker)), nil, ErrUnknownSigner, "sig_key 7D:B2:BD"},
		{"module_tampered", makeTar(t, file("m.ko", mutate(mod, func(b []byte) []byte { b[10] ^= 1; return b }))), nil, ErrBadSignature, "does not verify with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for how, r := range readers(tt.data) {
				start := time.Now()
				p, err := VerifyPatch(context.Background(), r(), sum(tt.data), v, tt.opts...)
				if !errors.Is(err, tt.want) {
					t.Fatalf("%s: VerifyPatch = %v; want %v", how, err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.why) {
					t.Errorf("%s: VerifyPatch = %v; want the reason %q", how, err, tt.why)
				}
				if p != nil {
					t.Fatalf("%s: patch returned with an error", how)
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("%s: took %v", how, d)
				}
			}
		})
	}
}

func TestVerifyPatchChecksum(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	data := buildTestPatch(t)
	good := sum(data)
	for name, want := range map[string]string{
		"wrong_hash":      sum([]byte("other")),
		"empty":           "",
		"63_chars":        good[:63],
		"65_chars":        good + "0",
		"not_hex":         "g" + good[1:],
		"spaces":          " " + good[1:],
		"sha256sum_line":  good + "  patch.tar.gz",
		"sha512_length":   good + good,
		"prefixed_sha256": "sha256:" + good[7:],
	} {
		t.Run(name, func(t *testing.T) {
			for how, r := range readers(data) {
				if _, err := VerifyPatch(context.Background(), r(), want, v); !errors.Is(err, ErrChecksumMismatch) {
					t.Fatalf("%s: VerifyPatch = %v", how, err)
				}
			}
			if _, err := VerifyChecksum(context.Background(), bytes.NewReader(data), want); !errors.Is(err, ErrChecksumMismatch) {
				t.Fatalf("VerifyChecksum = %v", err)
			}
		})
	}
	// A tampered tarball fails on the checksum before anything parses it.
	bad := mutate(data, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	for how, r := range readers(bad) {
		if _, err := VerifyPatch(context.Background(), r(), good, v); !errors.Is(err, ErrChecksumMismatch) {
			t.Errorf("%s: tampered tarball: %v", how, err)
		}
	}
	if n, err := VerifyChecksum(context.Background(), bytes.NewReader(data), strings.ToUpper(good)); err != nil || n != int64(len(data)) {
		t.Errorf("VerifyChecksum = %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := VerifyPatch(ctx, bytes.NewReader(data), good, v); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestExtract(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	data := readTestdata(t, "good_patch_gnutar.tar.bz2")
	p, err := VerifyPatch(context.Background(), bytes.NewReader(data), sum(data), v)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := p.Extract(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, p.ModuleName))
	if err != nil || !bytes.Equal(got, p.Module) {
		t.Fatalf("extracted module: %v", err)
	}
	// A second extraction must not replace what is there, and a symlink
	// planted in the directory must not be followed out of it.
	if err := p.Extract(dir); err == nil {
		t.Error("Extract replaced existing files")
	}
	dir2 := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir2, "livepatch-6.1.0-18-generic-3-x86_64")); err != nil {
		t.Fatal(err)
	}
	if err := p.Extract(dir2); err == nil {
		t.Error("Extract followed a symlink out of its directory")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the directory: %v", ents)
	}
}

// readerOnly hides every method but Read, as a pipe or an HTTP body would:
// VerifyPatch then holds the patch in memory instead of reading it twice.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// readers gives the two ways VerifyPatch reads a patch: twice from a reader
// that seeks, or once into memory from one that does not.
func readers(data []byte) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"seeker": func() io.Reader { return bytes.NewReader(data) },
		"stream": func() io.Reader { return readerOnly{bytes.NewReader(data)} },
	}
}

// swapReader serves first until it is first sought, then second: a file
// that someone rewrites between VerifyPatch's hash and its reading.
type swapReader struct {
	first, second []byte
	cur           *bytes.Reader
	swapped       bool
}

func (s *swapReader) Read(p []byte) (int, error) {
	if s.cur == nil {
		s.cur = bytes.NewReader(s.first)
	}
	return s.cur.Read(p)
}

func (s *swapReader) Seek(off int64, whence int) (int64, error) {
	if s.cur == nil {
		s.cur = bytes.NewReader(s.first)
	}
	if s.swapped || (whence == io.SeekCurrent && off == 0) {
		return s.cur.Seek(off, whence)
	}
	s.swapped = true
	pos, _ := s.cur.Seek(0, io.SeekCurrent)
	s.cur = bytes.NewReader(s.second)
	s.cur.Seek(pos, io.SeekStart)
	return s.cur.Seek(off, whence)
}

func TestVerifyPatchChangedBetweenPasses(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	good := buildTestPatch(t)
	// Another patch that verifies on its own: without the second hash,
	// it would be returned under good's checksum.
	other := makeTar(t, file("m.ko", signedTestModule(t)))
	if _, err := VerifyPatch(context.Background(), bytes.NewReader(other), sum(other), v); err != nil {
		t.Fatal(err)
	}
	for name, second := range map[string][]byte{
		"other_valid_patch": other,
		"grown":             append(append([]byte(nil), good...), 0),
		"truncated":         good[:len(good)-1],
		"one_bit":           mutate(good, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }),
	} {
		t.Run(name, func(t *testing.T) {
			r := &swapReader{first: good, second: second}
			p, err := VerifyPatch(context.Background(), r, sum(good), v)
			if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "changed between its hash and its reading") {
				t.Fatalf("VerifyPatch = %v; want ErrChecksumMismatch, changed", err)
			}
			if p != nil || !r.swapped {
				t.Fatalf("patch %v, swapped %v", p, r.swapped)
			}
		})
	}
	// Unchanged, the same reader verifies: the test above fails for the
	// change, not for the reader.
	if _, err := VerifyPatch(context.Background(), &swapReader{first: good, second: good}, sum(good), v); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyPatchFromOffset: a seekable reader is read from where it stands,
// both times.
func TestVerifyPatchFromOffset(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	good := buildTestPatch(t)
	r := bytes.NewReader(append([]byte("junk before the patch"), good...))
	r.Seek(int64(len("junk before the patch")), io.SeekStart)
	if _, err := VerifyPatch(context.Background(), r, sum(good), v); err != nil {
		t.Fatal(err)
	}
}
