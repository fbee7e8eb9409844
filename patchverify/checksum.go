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
func VerifyChecksum(ctx context.Context, r io.Reader, wantSHA256 string, opts ...Option) (int64, error) {
	cfg, err := build("VerifyChecksum", forChecksum, opts)
	if err != nil {
		return 0, err
	}
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
