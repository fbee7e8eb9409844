package patchverify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/kmodtest"
)

const testVermagic = "vermagic=6.1.0-18-generic SMP preempt mod_unload "

// patchWith signs module with the vendor key and tars it with metadata.
func patchWith(t testing.TB, modName string, module []byte, meta string) []byte {
	t.Helper()
	return makeTar(t, file("metadata.json", []byte(meta)), file(modName, signWith(t, module, "vendor_rsa4096")))
}

// TestReadModuleInfoHostile: every malformed ELF or .modinfo is
// ErrMalformedModule with the reason, never a panic.
func TestReadModuleInfoHostile(t *testing.T) {
	good := kmodtest.Module("name=x", testVermagic)
	// patch rewrites good at off with v (little-endian, len(v) bytes).
	patch := func(off int, v any) []byte {
		b := bytes.Clone(good)
		var buf bytes.Buffer
		binary.Write(&buf, binary.LittleEndian, v)
		copy(b[off:], buf.Bytes())
		return b
	}
	shoff := int(binary.LittleEndian.Uint64(good[0x28:]))
	modinfoHdr := shoff + 64 // section 1
	tests := []struct {
		name string
		mod  []byte
		why  string
	}{
		{"empty", nil, "not an ELF file"},
		{"not_elf", []byte(strings.Repeat("A", 100)), "not an ELF file"},
		{"truncated_header", good[:40], "not an ELF file"},
		{"bad_class", patch(4, uint8(7)), "bad ELF class"},
		{"bad_data", patch(5, uint8(9)), "bad ELF data encoding"},
		{"section_table_past_end", patch(0x28, uint64(len(good))), "section header table out of bounds"},
		{"section_table_huge_offset", patch(0x28, uint64(1)<<63), "section header table out of bounds"},
		{"too_many_sections", patch(0x3c, uint16(0xffff)), "section header table out of bounds"},
		{"no_sections", patch(0x3c, uint16(0)), "section header table out of bounds"},
		{"zero_entsize", patch(0x3a, uint16(0)), "section header table out of bounds"},
		{"modinfo_past_end", patch(modinfoHdr+24, uint64(len(good)+10)), ".modinfo section out of bounds"},
		{"modinfo_size_huge", patch(modinfoHdr+32, uint64(1)<<40), ".modinfo section out of bounds"},
		{"modinfo_nobits", patch(modinfoHdr+4, uint32(8)), "no .modinfo section"},
		{"no_modinfo", kmodtest.Module(), "lacks name= or vermagic="},
		{"no_name", kmodtest.Module(testVermagic), "lacks name= or vermagic="},
		{"no_vermagic", kmodtest.Module("name=x"), "lacks name= or vermagic="},
		{"two_names", kmodtest.Module("name=x", "name=y", testVermagic), "repeats name="},
		{"two_vermagics", kmodtest.Module("name=x", testVermagic, "vermagic=5.4.0 SMP"), "repeats vermagic="},
		{"two_versions", kmodtest.Module("name=x", "version=1", "version=2", testVermagic), "repeats version="},
		{"escape_in_name", kmodtest.Module("name=x\x1b[2J", testVermagic), "name= has a control character"},
		{"bidi_in_vermagic", kmodtest.Module("name=x", "vermagic=6.1.0\u202e SMP"), "vermagic= has a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ReadModuleInfo(tt.mod)
			if !errors.Is(err, ErrMalformedModule) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("ReadModuleInfo = %+v, %v; want ErrMalformedModule (%q)", info, err, tt.why)
			}
		})
	}
	info, err := ReadModuleInfo(kmodtest.Module("license=GPL", "livepatch=Y", "name=x", "version=4", testVermagic))
	if err != nil || info.Name != "x" || info.Version != "4" || !info.Livepatch || info.Release() != "6.1.0-18-generic" {
		t.Fatalf("ReadModuleInfo = %+v, %v", info, err)
	}
	// The sign-file vectors are real gcc output.
	if info, err := ReadModuleInfo(testModule(t)); err != nil || info.Name != "lpsec_test" || info.Release() != "6.1.0" {
		t.Fatalf("gcc module: %+v, %v", info, err)
	}
}

// TestVerifyPatchBinding: validly signed patches whose metadata lies about
// the module are refused; the "version 99 for kernel 5.4.0" first.
func TestVerifyPatchBinding(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	lp := kmodtest.Livepatch("6.1.0-18", "generic", 3) // name livepatch_6_1_0_18_3, version=3
	const name = "livepatch_6_1_0_18_3.ko"
	meta := func(kernel, flavour string, version int, module string) string {
		b, _ := json.Marshal(Metadata{Kernel: kernel, Flavour: flavour, Version: version, Module: module})
		return string(b)
	}
	tests := []struct {
		name string
		data []byte
		opts []Option
		want error
		why  string
	}{
		{"metadata_other_kernel", patchWith(t, name, lp, meta("5.4.0", "generic", 3, name)), nil, ErrMetadataMismatch, `metadata is for kernel "5.4.0-generic", the module's vermagic for "6.1.0-18-generic"`},
		{"metadata_other_flavour", patchWith(t, name, lp, meta("6.1.0-18", "aws", 3, name)), nil, ErrMetadataMismatch, `"6.1.0-18-aws"`},
		{"metadata_version_99", patchWith(t, name, lp, meta("6.1.0-18", "generic", 99, name)), nil, ErrMetadataMismatch, `metadata version 99, the module's version= is "3"`},
		{"metadata_no_kernel", patchWith(t, name, lp, `{"version":3}`), nil, ErrMetadataMismatch, "metadata names no kernel"},
		{"module_renamed", patchWith(t, "livepatch_6_1_0_18_4.ko", lp, meta("6.1.0-18", "generic", 3, "")), nil, ErrMetadataMismatch, `the tarball's module is "livepatch_6_1_0_18_4", the module's name= is "livepatch_6_1_0_18_3"`},
		{"gcc_module_in_a_6_1_0_18_patch", readTestdata(t, "fail_metadata_kernel_mismatch.tar.bz2"), nil, ErrMetadataMismatch, `for "6.1.0"`},
		{"not_elf_with_metadata", patchWith(t, name, []byte("not an ELF module"), meta("6.1.0-18", "generic", 3, name)), nil, ErrMalformedModule, "not an ELF file"},
		{"not_livepatch", patchWith(t, "x.ko", kmodtest.Module("name=x", testVermagic), meta("6.1.0-18", "generic", 3, "")), []Option{WithRequireLivepatch()}, ErrNotLivepatch, "x has no livepatch=Y"},
		{"wrong_kernel", patchWith(t, name, lp, meta("6.1.0-18", "generic", 3, name)), []Option{WithKernelRelease("6.1.0-18-amd64")}, ErrWrongKernel, `patch is for "6.1.0-18-generic", this kernel is "6.1.0-18-amd64"`},
		{"wrong_kernel_no_metadata", makeTar(t, file(name, signWith(t, lp, "vendor_rsa4096"))), []Option{WithKernelRelease("5.4.0")}, ErrWrongKernel, `patch is for "6.1.0-18-generic"`},
		{"state_without_metadata", makeTar(t, file(name, signWith(t, lp, "vendor_rsa4096"))), []Option{WithAppliedState(memState{})}, ErrMetadataMismatch, "no metadata version"},
		// Trailing bytes after the signature are not signed: a .modinfo
		// there must not count. The signed module is a plain blob.
		{"modinfo_outside_signature", makeTar(t, file("metadata.json", []byte(meta("6.1.0-18", "generic", 3, name))), file(name, signWith(t, []byte("unsigned part"), "vendor_rsa4096"))), nil, ErrMalformedModule, "not an ELF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := VerifyPatch(context.Background(), bytes.NewReader(tt.data), sum(tt.data), v, tt.opts...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) || p != nil {
				t.Fatalf("VerifyPatch = %v; want %v (%q)", err, tt.want, tt.why)
			}
		})
	}
	good := patchWith(t, name, lp, meta("6.1.0-18", "generic", 3, name))
	p, err := VerifyPatch(context.Background(), bytes.NewReader(good), sum(good), v, WithRequireLivepatch(), WithKernelRelease("6.1.0-18-generic"))
	if err != nil || p.Info.Name != "livepatch_6_1_0_18_3" {
		t.Fatalf("good patch: %v", err)
	}
	// BuildPatch refuses to build what VerifyPatch refuses.
	for _, m := range []Metadata{
		{Kernel: "5.4.0", Flavour: "generic", Version: 3, Module: name},
		{Kernel: "6.1.0-18", Flavour: "generic", Version: 99, Module: name},
		{Kernel: "6.1.0-18", Flavour: "generic", Version: 3, Module: "other.ko"},
	} {
		if err := BuildPatch(new(bytes.Buffer), m, signWith(t, lp, "vendor_rsa4096")); !errors.Is(err, ErrMetadataMismatch) {
			t.Errorf("BuildPatch(%+v) = %v, want ErrMetadataMismatch", m, err)
		}
	}
}

// TestAmbiguousModulePath: the good.ko.gz + good.ko/zz, which every
// client failed to extract, is refused by VerifyPatch (so at upload too).
func TestAmbiguousModulePath(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	mod := signedTestModule(t)
	for name, data := range map[string][]byte{
		"file_under_module_path": makeTar(t, file("good.ko.gz", gz(t, mod)), file("good.ko/zz", nil)),
		"case_folded":            makeTar(t, file("good.ko.xz", pipeProgram(t, "xz", "xz-utils", mod)), file("GOOD.KO/zz", nil)),
		"file_at_module_path":    makeTar(t, file("d/good.ko.zst", pipeProgram(t, "zstd", "zstd", mod)), file("d/Good.KO", nil)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyPatch(context.Background(), bytes.NewReader(data), sum(data), v)
			if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), "extract to the same path") {
				t.Fatalf("VerifyPatch = %v", err)
			}
		})
	}
}

// memState is an in-memory AppliedState for tests of VerifyPatch alone.
type memState map[string]Applied

func (m memState) Applied(_ context.Context, kernel, module string) (Applied, bool, error) {
	a, ok := m[stateKey(kernel, module)]
	return a, ok, nil
}

func (m memState) Record(_ context.Context, a Applied) error {
	m[stateKey(a.Kernel, a.Module)] = a
	return nil
}

// TestRollback: the sequence, version 2 applied then version 1
// offered, with the real file state; and the operator's override.
func TestRollback(t *testing.T) {
	var logBuf bytes.Buffer
	v, err := NewVerifier([]*x509.Certificate{loadCert(t, "vendor_rsa4096")}, WithLogger(slog.New(slog.NewJSONHandler(&logBuf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stateFile := filepath.Join(t.TempDir(), "applied.json")
	st, err := OpenFileState(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	// One module name across versions, as vendors that replace a patch do.
	mk := func(version int) []byte {
		m := kmodtest.Module("livepatch=Y", "name=lp", "vermagic=6.1.0-18-generic SMP ")
		var buf bytes.Buffer
		if err := BuildPatch(&buf, Metadata{Kernel: "6.1.0-18", Flavour: "generic", Version: version, Module: "lp.ko"}, signWith(t, m, "vendor_rsa4096")); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	verify := func(data []byte, opts ...Option) (*Patch, error) {
		return VerifyPatch(ctx, bytes.NewReader(data), sum(data), v, append([]Option{WithAppliedState(st)}, opts...)...)
	}
	v1, v2 := mk(1), mk(2)
	p, err := verify(v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RecordApplied(ctx); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"older": v1, "same": v2} {
		if _, err := verify(data); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "version 2 is applied") {
			t.Errorf("%s: VerifyPatch = %v, want ErrRollback", name, err)
		}
	}
	// A second process opening the same file sees the record.
	st2, err := OpenFileState(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok, err := st2.Applied(ctx, "6.1.0-18-generic", "lp"); err != nil || !ok || a.Version != 2 || a.SHA256 != sum(v2) {
		t.Fatalf("Applied = %+v %v %v", a, ok, err)
	}
	// Verified before v2 was recorded, recorded after: RecordApplied checks again.
	stale, err := VerifyPatch(ctx, bytes.NewReader(v1), sum(v1), v, WithAppliedState(memState{}))
	if err != nil {
		t.Fatal(err)
	}
	stale.state = st
	if err := stale.RecordApplied(ctx); !errors.Is(err, ErrRollback) {
		t.Fatalf("RecordApplied of a stale patch = %v", err)
	}
	// The operator's override goes through and is a security event.
	p, err = verify(v1, WithAllowRollback())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RecordApplied(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logBuf.String(), `"event":"patch_rollback_allowed"`); n != 2 {
		t.Errorf("%d patch_rollback_allowed events, want 2 (verify and record):\n%s", n, logBuf.String())
	}
	if _, err := VerifyPatch(ctx, bytes.NewReader(v1), sum(v1), v, WithAllowRollback()); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("WithAllowRollback without a state: %v", err)
	}
	if err := (&Patch{}).RecordApplied(ctx); err == nil {
		t.Error("RecordApplied without a state succeeded")
	}
}

// TestFileStateCorrupt: a damaged state file is an error, never a reset to
// "nothing applied" (which would allow a rollback).
func TestFileStateCorrupt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "applied.json")
	st, err := OpenFileState(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"6.1.0-18-generic", "6.1.0-19-generic"} {
		if err := st.Record(ctx, Applied{Kernel: k, Module: "lp", Version: 5 + i, SHA256: strings.Repeat("a", 64)}); err != nil {
			t.Fatal(err)
		}
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode())
	}
	digit := bytes.IndexByte(good, '5')
	tests := []struct {
		name string
		data []byte
		opts []Option
		want error
		why  string
	}{
		{"truncated", good[:len(good)/2], nil, ErrCorruptState, "unexpected end of JSON"},
		{"empty", nil, nil, ErrCorruptState, "unexpected end of JSON"},
		{"version_changed", append(append(bytes.Clone(good[:digit]), '1'), good[digit+1:]...), nil, ErrCorruptState, "checksum mismatch"},
		{"other_format", []byte(`{"format":"v0","patches":[],"sha256":""}`), nil, ErrCorruptState, `format "v0"`},
		{"too_large", good, []Option{WithMaxStateSize(int64(len(good) - 1))}, ErrCorruptState, "larger than"},
		{"repeated_record", stateBytes(t, `[{"kernel":"k","module":"m","version":1},{"kernel":"k","module":"m","version":2}]`), nil, ErrCorruptState, "repeated record"},
		{"version_zero", stateBytes(t, `[{"kernel":"k","module":"m","version":0}]`), nil, ErrCorruptState, "bad or repeated record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "applied.json")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenFileState(p, tt.opts...); !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("OpenFileState = %v, want %v (%q)", err, tt.want, tt.why)
			}
		})
	}
	// Corrupted after opening: Applied and Record fail too, and Record
	// leaves the file as it was.
	if err := os.WriteFile(path, good[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Applied(ctx, "6.1.0-18-generic", "lp"); !errors.Is(err, ErrCorruptState) {
		t.Errorf("Applied on a corrupt file = %v", err)
	}
	if err := st.Record(ctx, Applied{Kernel: "k", Module: "m", Version: 1}); !errors.Is(err, ErrCorruptState) {
		t.Errorf("Record on a corrupt file = %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, good[:10]) {
		t.Error("Record replaced a corrupt file")
	}
	// Full: a record that would exceed the bound is refused.
	small, err := OpenFileState(filepath.Join(dir, "small.json"), WithMaxStateSize(200))
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Record(ctx, Applied{Kernel: strings.Repeat("k", 200), Module: "m", Version: 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Record past the bound = %v", err)
	}
}

func stateBytes(t *testing.T, patches string) []byte {
	t.Helper()
	s := sha256Hex([]byte(patches))
	b, err := json.Marshal(stateFile{Format: stateFormat, Patches: json.RawMessage(patches), SHA256: s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string { return sum(b) }

// TestOptionMisuse: each misuse is ErrInvalidOption naming the option.
func TestOptionMisuse(t *testing.T) {
	certs := []*x509.Certificate{loadCert(t, "vendor_rsa4096")}
	data := buildTestPatch(t)
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	ctx := context.Background()
	verify := func(opts ...Option) error {
		_, err := VerifyPatch(ctx, bytes.NewReader(data), sum(data), v, opts...)
		return err
	}
	newV := func(opts ...Option) error { _, err := NewVerifier(certs, opts...); return err }
	tests := []struct {
		name string
		err  error
		why  string
	}{
		{"logger_nil", newV(WithLogger(nil)), "WithLogger: nil logger"},
		{"policy_unknown", newV(WithPolicy(Policy(7))), "WithPolicy: unknown Policy(7)"},
		{"validity_zero", newV(WithValidityAt(timeZero)), "WithValidityAt: zero time"},
		{"max_patch_zero", verify(WithMaxPatchSize(0)), "WithMaxPatchSize: limit 0 is not positive"},
		{"max_entries_negative", verify(WithMaxEntries(-1)), "WithMaxEntries: limit -1 is not positive"},
		{"max_file_zero", verify(WithMaxFileSize(0)), "WithMaxFileSize"},
		{"max_unpacked_zero", verify(WithMaxUnpackedSize(0)), "WithMaxUnpackedSize"},
		{"state_nil", verify(WithAppliedState(nil)), "WithAppliedState: nil state"},
		{"kernel_empty", verify(WithKernelRelease("")), "WithKernelRelease: empty kernel release"},
		{"zero_option", verify(Option{}), "zero Option given to VerifyPatch"},
		{"logger_to_verifypatch", verify(WithLogger(slog.Default())), "WithLogger does not apply to VerifyPatch"},
		{"https_to_verifypatch", verify(WithRequireHTTPS()), "WithRequireHTTPS does not apply to VerifyPatch"},
		{"policy_to_verifypatch", verify(WithPolicy(PolicyKernel)), "WithPolicy does not apply to VerifyPatch"},
		{"entries_to_verifier", newV(WithMaxEntries(3)), "WithMaxEntries does not apply to NewVerifier"},
		{"hash_to_verifier", newV(SignWithHash(0)), "SignWithHash does not apply to NewVerifier"},
		{"entries_to_checksum", func() error {
			_, err := VerifyChecksum(ctx, bytes.NewReader(data), sum(data), WithMaxEntries(3))
			return err
		}(), "WithMaxEntries does not apply to VerifyChecksum"},
		{"tempdir_empty", func() error { _, err := Download(ctx, nil, "https://x/", sum(data), WithTempDir("")); return err }(), "WithTempDir: empty directory"},
		{"sign_hash_zero", func() error {
			_, err := SignModule(testModule(t), loadKey(t, "vendor_rsa4096"), certs[0], SignWithHash(0))
			return err
		}(), "SignWithHash: zero hash"},
		{"state_size_zero", func() error {
			_, err := OpenFileState(filepath.Join(t.TempDir(), "s"), WithMaxStateSize(0))
			return err
		}(), "WithMaxStateSize"},
		{"patch_option_to_state", func() error { _, err := OpenFileState(filepath.Join(t.TempDir(), "s"), WithMaxEntries(1)); return err }(), "WithMaxEntries does not apply to OpenFileState"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrInvalidOption) || !strings.Contains(tt.err.Error(), tt.why) {
			t.Errorf("%s: %v, want ErrInvalidOption (%q)", tt.name, tt.err, tt.why)
		}
	}
}

var timeZero = time.Time{}
