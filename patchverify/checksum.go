package patchverify

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// PatchOption configures VerifyPatch, VerifyChecksum and Download: the size
// bounds, and for Download the transport rule and temporary directory.
type PatchOption func(*patchConfig)

type patchConfig struct {
	maxPatchSize   int64
	maxEntries     int
	maxFileSize    int64
	maxUnpacked    int64
	requireHTTPS   bool
	tempDir        string
	externalDecomp bool
}

// Defaults sized for live patches, which are a few MiB: generous for real
// ones, small enough that a hostile one costs little.
const (
	DefaultMaxPatchSize = 64 << 20
	DefaultMaxEntries   = 64
	DefaultMaxFileSize  = 64 << 20
	DefaultMaxUnpacked  = 128 << 20
	maxMetadataSize     = 64 << 10
)

func newPatchConfig(opts []PatchOption) patchConfig {
	c := patchConfig{
		maxPatchSize:   DefaultMaxPatchSize,
		maxEntries:     DefaultMaxEntries,
		maxFileSize:    DefaultMaxFileSize,
		maxUnpacked:    DefaultMaxUnpacked,
		externalDecomp: true,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithMaxPatchSize bounds the bytes read or downloaded (the compressed
// tarball). VerifyPatch holds that many bytes in memory at most;
// VerifyChecksum and Download stream them.
func WithMaxPatchSize(n int64) PatchOption { return func(c *patchConfig) { c.maxPatchSize = n } }

// WithMaxEntries bounds the number of tarball entries, directories included.
func WithMaxEntries(n int) PatchOption { return func(c *patchConfig) { c.maxEntries = n } }

// WithMaxFileSize bounds each file in the tarball, and the module after
// decompression.
func WithMaxFileSize(n int64) PatchOption { return func(c *patchConfig) { c.maxFileSize = n } }

// WithMaxUnpackedSize bounds the whole decompressed tar stream, headers and
// skipped data included: a compression bomb stops there.
func WithMaxUnpackedSize(n int64) PatchOption { return func(c *patchConfig) { c.maxUnpacked = n } }

// WithRequireHTTPS makes Download refuse, with ErrInsecureURL, a URL or
// redirect that is not https. It is the client's "TLS-only downloads" switch.
func WithRequireHTTPS() PatchOption { return func(c *patchConfig) { c.requireHTTPS = true } }

// WithTempDir sets where Download creates its private temporary file; the
// default is os.TempDir().
func WithTempDir(dir string) PatchOption { return func(c *patchConfig) { c.tempDir = dir } }

// withoutExternalDecompressors keeps fuzzing free of subprocesses.
func withoutExternalDecompressors() PatchOption {
	return func(c *patchConfig) { c.externalDecomp = false }
}

// parseSHA256 accepts exactly 64 hexadecimal characters, in either case.
func parseSHA256(want string) ([]byte, error) {
	if len(want) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: expected value is %d characters, not 64 hex", ErrChecksumMismatch, len(want))
	}
	sum, err := hex.DecodeString(want)
	if err != nil {
		return nil, fmt.Errorf("%w: expected value is not hexadecimal", ErrChecksumMismatch)
	}
	return sum, nil
}

// copyBufSize is large enough that the copy costs little next to SHA-256.
const copyBufSize = 64 << 10

// hashWriter feeds the hash, and w if set, and stops with ErrTooLarge past
// max bytes and with ctx's error once ctx ends.
type hashWriter struct {
	ctx context.Context
	h   hash.Hash
	w   io.Writer
	n   int64
	max int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	if err := hw.ctx.Err(); err != nil {
		return 0, err
	}
	hw.n += int64(len(p))
	if hw.n > hw.max {
		return 0, fmt.Errorf("%w: patch is larger than %d bytes", ErrTooLarge, hw.max)
	}
	hw.h.Write(p)
	if hw.w != nil {
		return hw.w.Write(p)
	}
	return len(p), nil
}

// hashCopy streams r into h (and w). A reader that can write itself out,
// such as bytes.Reader, is hashed without an intermediate copy.
func hashCopy(ctx context.Context, w io.Writer, h hash.Hash, r io.Reader, max int64) (int64, error) {
	hw := &hashWriter{ctx: ctx, h: h, w: w, max: max}
	_, err := io.CopyBuffer(hw, r, make([]byte, copyBufSize))
	return hw.n, err
}

func checkSum(h hash.Hash, want []byte) error {
	if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
		return ErrChecksumMismatch
	}
	return nil
}

// VerifyChecksum reads r to its end, at most WithMaxPatchSize bytes, and
// checks that its SHA-256 is wantSHA256 (64 hex characters, either case). It
// streams in constant memory; it returns the number of bytes read. Use it
// for a checksum alone; VerifyPatch does it as its first step.
func VerifyChecksum(ctx context.Context, r io.Reader, wantSHA256 string, opts ...PatchOption) (int64, error) {
	cfg := newPatchConfig(opts)
	want, err := parseSHA256(wantSHA256)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := hashCopy(ctx, nil, h, r, cfg.maxPatchSize)
	if err != nil {
		return n, err
	}
	return n, checkSum(h, want)
}
