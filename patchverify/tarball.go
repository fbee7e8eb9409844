package patchverify

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Metadata describes a patch. BuildPatch writes it as metadata.json beside
// the module; VerifyPatch reads it back once the checksum and the module
// signature have verified.
type Metadata struct {
	Kernel       string `json:"kernel"`       // kernel release the patch applies to, e.g. "6.1.0-18"
	Flavour      string `json:"flavour"`      // e.g. "generic"
	Version      int    `json:"version"`      // patch version, increasing
	Architecture string `json:"architecture"` // e.g. "x86_64"
	Module       string `json:"module"`       // the module's file name in the tarball, e.g. "livepatch_6_1_0_18_3.ko"
}

const metadataName = "metadata.json"

// Patch is a patch whose checksum and module signature have verified.
type Patch struct {
	// SHA256 is the tarball's checksum, lower-case hex.
	SHA256 string
	// Metadata is metadata.json, nil when the tarball has none.
	Metadata *Metadata
	// ModuleName is the module's path in the tarball without any
	// compression suffix (".ko").
	ModuleName string
	// Module is the signed module as verified, decompressed: what the
	// kernel is given to load.
	Module []byte
	// Signer is who signed the module.
	Signer *Signer
	// Files holds the tarball's other regular files (metadata.json
	// included), by path. They are covered by the checksum only.
	Files map[string][]byte
	// Info is the signed module's .modinfo, read when the patch has
	// metadata or an option needs it; nil otherwise.
	Info *ModuleInfo

	state         AppliedState
	allowRollback bool
	log           *slog.Logger
}

// Release returns the kernel release the metadata names: Kernel, followed
// by "-" and Flavour when there is one ("6.1.0-18" and "amd64" give
// "6.1.0-18-amd64", what uname -r and the module's vermagic say).
func (m *Metadata) Release() string {
	if m.Flavour == "" {
		return m.Kernel
	}
	return m.Kernel + "-" + m.Flavour
}

// VerifyPatch is the client's whole pipeline, in the order that keeps
// untrusted bytes from being used: it reads r (at most WithMaxPatchSize
// bytes) while computing its SHA-256 and compares it in constant time with
// wantSHA256; only then does it read the tarball (tar.bz2, tar.gz, tar.xz,
// tar.zst or tar, recognised by content) under the entry and size bounds:
// again from r, hashed once more and refused if it changed, when r can
// seek (an *os.File, a bytes.Reader), from memory otherwise, so that a file
// is never held whole (the package doc's Memory gives the bound); it requires exactly one module (.ko, or .ko.gz, .ko.xz or
// .ko.zst, decompressed first as the kernel does), verifies its signature
// with v, and only then parses the metadata.
func VerifyPatch(ctx context.Context, r io.Reader, wantSHA256 string, v *Verifier, opts ...Option) (*Patch, error) {
	if v == nil {
		return nil, errors.New("patchverify: VerifyPatch needs a Verifier")
	}
	cfg, err := build("VerifyPatch", forPatch, opts)
	if err != nil {
		return nil, err
	}
	p, err := verifyPatch(ctx, r, wantSHA256, v, cfg)
	if err != nil {
		if errors.Is(err, ErrChecksumMismatch) {
			v.log.Warn("patch checksum mismatch", "event", "patch_checksum_mismatch", "error", err)
		} else if !errors.Is(err, ErrUnsigned) && !errors.Is(err, ErrMalformedSignature) &&
			!errors.Is(err, ErrUnknownSigner) && !errors.Is(err, ErrBadSignature) &&
			!errors.Is(err, ErrDisallowedAlgorithm) && !errors.Is(err, ErrCertificateNotValid) {
			// Signature failures were logged by VerifyModule.
			v.log.Warn("patch archive rejected", "event", "patch_archive_rejected", "reason", reason(err), "error", err)
		}
		return nil, err
	}
	v.log.Info("patch verified", "event", "patch_verified", "sha256", p.SHA256, "module", p.ModuleName)
	return p, nil
}

func verifyPatch(ctx context.Context, r io.Reader, wantSHA256 string, v *Verifier, cfg *settings) (*Patch, error) {
	want, err := parseSHA256(wantSHA256)
	if err != nil {
		return nil, err
	}
	files, err := checkAndRead(ctx, r, want, cfg)
	if err != nil {
		return nil, err
	}
	p := &Patch{SHA256: hex.EncodeToString(want), state: cfg.state, allowRollback: cfg.allowRollback, log: v.log}
	var modName string
	for name := range files {
		if moduleCompression(name) != compUnknown {
			if modName != "" {
				return nil, fmt.Errorf("%w: more than one module (%s, %s)", ErrUnsafeArchive, modName, name)
			}
			modName = name
		}
	}
	if modName == "" {
		return nil, fmt.Errorf("%w: no kernel module (.ko, .ko.gz, .ko.xz, .ko.zst)", ErrUnsafeArchive)
	}
	p.ModuleName = modName[:strings.LastIndex(modName, ".ko")+len(".ko")]
	// The module is extracted decompressed, under ModuleName: no other
	// entry may land on that path or under it (good.ko.gz with good.ko/zz).
	lmod := strings.ToLower(p.ModuleName)
	for name := range files {
		if l := strings.ToLower(name); name != modName && (l == lmod || strings.HasPrefix(l, lmod+"/")) {
			return nil, fmt.Errorf("%w: %q and the module %q extract to the same path", ErrUnsafeArchive, name, modName)
		}
	}
	module, err := decompressModule(ctx, modName, files[modName], cfg)
	if err != nil {
		return nil, err
	}
	delete(files, modName)
	signer, err := v.VerifyModule(module)
	if err != nil {
		return nil, err
	}
	p.Module, p.Signer, p.Files = module, signer, files

	// Both checks passed: the metadata may now be read.
	var metaName string
	for name := range files {
		if path.Base(name) == metadataName {
			if metaName != "" {
				return nil, fmt.Errorf("%w: more than one %s", ErrUnsafeArchive, metadataName)
			}
			metaName = name
		}
	}
	if metaName != "" {
		raw := files[metaName]
		if len(raw) > maxMetadataSize {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, metaName, maxMetadataSize)
		}
		var m Metadata
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, metaName, err)
		}
		if m.Module != "" && m.Module != path.Base(modName) && m.Module != path.Base(p.ModuleName) {
			return nil, fmt.Errorf("%w: metadata names module %q, the tarball holds %q", ErrUnsafeArchive, m.Module, path.Base(modName))
		}
		p.Metadata = &m
	}
	if p.Metadata != nil || cfg.requireLivepatch || cfg.kernelRelease != "" || cfg.state != nil || cfg.catalogue != nil {
		// What the signature covers, not what follows it.
		if p.Info, err = ReadModuleInfo(signer.Signature.Content); err != nil {
			return nil, err
		}
	}
	if p.Metadata != nil {
		if err := bindMetadata(p.Metadata, p.Info, p.ModuleName); err != nil {
			return nil, err
		}
	}
	if cfg.requireLivepatch && !p.Info.Livepatch {
		return nil, fmt.Errorf("%w: %s has no livepatch=Y in .modinfo", ErrNotLivepatch, p.Info.Name)
	}
	if cfg.kernelRelease != "" && p.Info.Release() != cfg.kernelRelease {
		return nil, fmt.Errorf("%w: patch is for %q, this kernel is %q", ErrWrongKernel, p.Info.Release(), cfg.kernelRelease)
	}
	if cfg.catalogue != nil {
		if err := cfg.catalogue.checkListed(p); err != nil {
			return nil, err
		}
	}
	if cfg.state != nil {
		if err := p.checkNewer(ctx); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// bindMetadata checks that the metadata says what the signed module says:
// the signature covers the module only, so this is what makes the
// metadata's kernel, name and version as trustworthy as the signature.
func bindMetadata(m *Metadata, info *ModuleInfo, moduleName string) error {
	if m.Kernel == "" {
		return fmt.Errorf("%w: metadata names no kernel", ErrMetadataMismatch)
	}
	if m.Release() != info.Release() {
		return fmt.Errorf("%w: metadata is for kernel %q, the module's vermagic for %q", ErrMetadataMismatch, m.Release(), info.Release())
	}
	// The kernel knows modules by name with '-' read as '_'.
	modName := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	if want := modName(strings.TrimSuffix(path.Base(moduleName), ".ko")); modName(info.Name) != want {
		return fmt.Errorf("%w: the tarball's module is %q, the module's name= is %q", ErrMetadataMismatch, want, info.Name)
	}
	if info.Version != "" && info.Version != strconv.Itoa(m.Version) {
		return fmt.Errorf("%w: metadata version %d, the module's version= is %q", ErrMetadataMismatch, m.Version, info.Version)
	}
	return nil
}

// checkNewer refuses a version not higher than the applied one, unless the
// operator allowed it, which is logged as a security event.
func (p *Patch) checkNewer(ctx context.Context) error {
	if p.Metadata == nil || p.Metadata.Version < 1 {
		return fmt.Errorf("%w: no metadata version to compare with the applied state", ErrMetadataMismatch)
	}
	a, ok, err := p.state.Applied(ctx, p.Info.Release(), p.Info.Name)
	if err != nil {
		return err
	}
	if !ok || p.Metadata.Version > a.Version {
		return nil
	}
	if !p.allowRollback {
		return fmt.Errorf("%w: %s version %d for %s, version %d is applied", ErrRollback, p.Info.Name, p.Metadata.Version, p.Info.Release(), a.Version)
	}
	p.log.Warn("patch rollback allowed by the operator", "event", "patch_rollback_allowed",
		"kernel", p.Info.Release(), "module", p.Info.Name, "version", p.Metadata.Version, "applied_version", a.Version, "sha256", p.SHA256)
	return nil
}

// RecordApplied records p as applied in the state given to VerifyPatch with
// WithAppliedState: call it once the patch is applied (or, for a client that
// only places modules, placed). It checks again that p is newer than the
// record, which another process may have changed since VerifyPatch.
func (p *Patch) RecordApplied(ctx context.Context) error {
	if p.state == nil {
		return errors.New("patchverify: RecordApplied needs VerifyPatch's WithAppliedState")
	}
	if err := p.checkNewer(ctx); err != nil {
		return err
	}
	return p.state.Record(ctx, Applied{Kernel: p.Info.Release(), Module: p.Info.Name, Version: p.Metadata.Version, SHA256: p.SHA256, Time: time.Now().UTC()})
}

// checkAndRead checks r's SHA-256 against want and only then returns the
// tarball's files. A reader that can seek (a file, a bytes.Reader) is read
// twice and never held: a first pass hashes it, a second pass hashes it
// again while readTarball streams it, and the files are returned only if
// that second hash and length match too, so that a file changed between
// the passes is refused, not trusted. Any other reader is held in memory
// (at most WithMaxPatchSize bytes) between its hash and its tarball.
func checkAndRead(ctx context.Context, r io.Reader, want []byte, cfg *settings) (map[string][]byte, error) {
	if rs, start, ok := seekable(r); ok {
		h := sha256.New()
		n, err := hashCopy(ctx, nil, h, rs, cfg.maxPatchSize)
		if err != nil {
			return nil, err
		}
		if err := checkSum(h, want); err != nil {
			return nil, err
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("patchverify: rereading the patch: %w", err)
		}
		hr := &hashReader{r: rs, h: sha256.New()}
		files, err := readTarball(ctx, io.LimitReader(hr, n+1), n, cfg)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// What the parser left unread (the end of a refused archive) is
		// hashed too; one byte more than the first pass shows growth.
		if _, derr := io.Copy(io.Discard, io.LimitReader(hr, n+1-hr.n)); derr != nil && err == nil {
			err = archiveErr(ctx, derr)
		}
		if hr.n != n || checkSum(hr.h, want) != nil {
			return nil, fmt.Errorf("%w: the patch changed between its hash and its reading", ErrChecksumMismatch)
		}
		return files, err
	}
	// Held in chunks, never grown by doubling or copied into one slice,
	// and each chunk let go once the tarball reader is past it.
	w := &chunkWriter{}
	h := sha256.New()
	n, err := hashCopy(ctx, w, h, r, cfg.maxPatchSize)
	if err != nil {
		return nil, err
	}
	if err := checkSum(h, want); err != nil {
		return nil, err
	}
	return readTarball(ctx, w, n, cfg)
}

// chunkSize is the unit in which a patch from a reader that cannot seek is
// held: small enough that the last chunk wastes little.
const chunkSize = 256 << 10

// chunkWriter holds what is written to it in chunks of chunkSize bytes, then
// gives it back through Read, dropping each chunk once read.
type chunkWriter struct {
	chunks [][]byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(w.chunks) == 0 || len(w.chunks[len(w.chunks)-1]) == chunkSize {
			w.chunks = append(w.chunks, make([]byte, 0, chunkSize))
		}
		last := &w.chunks[len(w.chunks)-1]
		k := min(len(p), chunkSize-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (w *chunkWriter) Read(p []byte) (int, error) {
	for len(w.chunks) > 0 && len(w.chunks[0]) == 0 {
		w.chunks[0] = nil
		w.chunks = w.chunks[1:]
	}
	if len(w.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, w.chunks[0])
	w.chunks[0] = w.chunks[0][n:]
	return n, nil
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

// seekable returns r as an io.ReadSeeker and its current offset when it
// can seek (a regular file, a bytes.Reader; not a pipe).
func seekable(r io.Reader) (io.ReadSeeker, int64, bool) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return nil, 0, false
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, false
	}
	return rs, start, true
}

// sliceWriter appends to b; given an exact capacity it never reallocates.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// moduleCompression reports how a module file is compressed, by the
// suffixes the kernel's module tools use; compUnknown means not a module.
func moduleCompression(name string) compression {
	switch {
	case strings.HasSuffix(name, ".ko"):
		return compNone
	case strings.HasSuffix(name, ".ko.gz"):
		return compGzip
	case strings.HasSuffix(name, ".ko.xz"):
		return compXZ
	case strings.HasSuffix(name, ".ko.zst"):
		return compZstd
	}
	return compUnknown
}

const maxNameLen = 1024

// cleanName returns the entry's canonical path or why it is unsafe.
func cleanName(name string, dir bool) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case len(name) > maxNameLen:
		return "", errors.New("name too long")
	case strings.ContainsAny(name, "\\"):
		return "", fmt.Errorf("name %q has a backslash", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		// Control characters have no place in a patch and could forge log
		// lines or terminal output where names are shown.
		return "", fmt.Errorf("name %q has a control character", name)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("absolute name %q", name)
	}
	n := strings.TrimPrefix(name, "./")
	if dir {
		n = strings.TrimSuffix(n, "/")
		if n == "" || n == "." {
			return "", nil // the archive's own root
		}
	}
	for _, elem := range strings.Split(n, "/") {
		if elem == ".." {
			return "", fmt.Errorf("name %q has a \"..\" element", name)
		}
	}
	if path.Clean(n) != n || n == "." {
		return "", fmt.Errorf("name %q is not canonical", name)
	}
	return n, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("type %q", t)
}

// readTarball returns the regular files of the tarball src gives, refusing
// anything a patch must not hold and stopping at the entry and size bounds.
// It streams the compressed tarball through its decoder, except xz, which it
// reads into memory (size, when not negative, is how many bytes src gives)
// because checkXZ must see the stream's end before the decoder starts.
func readTarball(ctx context.Context, src io.Reader, size int64, cfg *settings) (map[string][]byte, error) {
	br := bufio.NewReaderSize(src, copyBufSize)
	head, _ := br.Peek(263) // short at the end of the input; sniff copes
	var rc io.ReadCloser
	var err error
	if c := sniff(head); c == compXZ {
		hint := int64(64 << 10)
		if size >= 0 {
			hint = size
		}
		data, err := readAllCapped(ctx, br, cfg.maxPatchSize, hint, "patch")
		if err != nil {
			return nil, archiveErr(ctx, err)
		}
		rc, err = decompressor(ctx, c, data, cfg)
		if err != nil {
			return nil, err
		}
	} else if rc, err = streamDecompressor(c, br); err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &capReader{ctx: ctx, r: rc, max: cfg.maxUnpacked, what: "decompressed tarball"}
	tr := tar.NewReader(cr)
	files := make(map[string][]byte)
	kinds := make(map[string]byte)   // lower-cased path -> 'f' file or 'd' directory
	parents := make(map[string]bool) // lower-cased directories that files are in
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, archiveErr(ctx, err)
		}
		if entries >= cfg.maxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrTooLarge, cfg.maxEntries)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir {
			return nil, fmt.Errorf("%w: %q is a %s", ErrUnsafeArchive, hdr.Name, typeName(hdr.Typeflag))
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, fmt.Errorf("%w: %q is a sparse file", ErrUnsafeArchive, hdr.Name)
			}
		}
		isDir := hdr.Typeflag == tar.TypeDir
		name, err := cleanName(hdr.Name, isDir)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsafeArchive, err)
		}
		if name == "" {
			continue
		}
		// Case-folded, so that extracting on a case-insensitive file system
		// cannot make one entry overwrite another.
		key := strings.ToLower(name)
		if _, dup := kinds[key]; dup {
			return nil, fmt.Errorf("%w: duplicate name %q", ErrUnsafeArchive, name)
		}
		for parent := path.Dir(key); parent != "."; parent = path.Dir(parent) {
			if kinds[parent] == 'f' {
				return nil, fmt.Errorf("%w: %q is inside file %q", ErrUnsafeArchive, name, parent)
			}
		}
		if isDir {
			kinds[key] = 'd'
			continue
		}
		if parents[key] {
			return nil, fmt.Errorf("%w: file %q has the name of a directory", ErrUnsafeArchive, name)
		}
		kinds[key] = 'f'
		for parent := path.Dir(key); parent != "."; parent = path.Dir(parent) {
			parents[parent] = true
		}
		if hdr.Size > cfg.maxFileSize {
			return nil, fmt.Errorf("%w: %q is %d bytes, more than %d", ErrTooLarge, name, hdr.Size, cfg.maxFileSize)
		}
		// Sized from the header: one allocation, no doubling. The header
		// cannot make it larger than what is left of the unpacked bound.
		if hdr.Size > cfg.maxUnpacked-cr.n {
			return nil, fmt.Errorf("%w: decompressed tarball exceeds %d bytes", ErrTooLarge, cfg.maxUnpacked)
		}
		b := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, archiveErr(ctx, err)
		}
		files[name] = b
	}
	// Read to the end of the stream: that checks the gzip or bzip2 CRC or
	// the decompressor's exit status, and refuses data hidden after the
	// archive's end (tar pads with zeros only).
	var buf [4096]byte
	for {
		n, err := cr.Read(buf[:])
		if !allZero(buf[:n]) {
			return nil, fmt.Errorf("%w: data after the end of the archive", ErrUnsafeArchive)
		}
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, archiveErr(ctx, err)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func archiveErr(ctx context.Context, err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsafeArchive) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: corrupt archive: %v", ErrUnsafeArchive, err)
}

// Extract writes the verified module (under ModuleName, decompressed) and the
// other files into dir, through an os.Root so that no name or symlink can
// make it write outside dir. It creates files with O_EXCL: it never replaces
// or follows an existing file.
func (p *Patch) Extract(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("patchverify: %w", err)
	}
	defer root.Close()
	write := func(name string, data []byte) error {
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(p.ModuleName, p.Module); err != nil {
		return fmt.Errorf("patchverify: extracting: %w", err)
	}
	for name, data := range p.Files {
		if err := write(name, data); err != nil {
			return fmt.Errorf("patchverify: extracting: %w", err)
		}
	}
	return nil
}
