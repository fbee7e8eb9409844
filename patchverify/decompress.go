package patchverify

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type compression int

const (
	compNone compression = iota
	compGzip
	compBzip2
	compXZ
	compZstd
	compUnknown
)

func (c compression) String() string {
	return [...]string{"none", "gzip", "bzip2", "xz", "zstd", "unknown"}[c]
}

// sniff recognises a format by its magic bytes, never by a file name.
func sniff(b []byte) compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return compGzip
	case len(b) >= 4 && bytes.HasPrefix(b, []byte("BZh")) && b[3] >= '1' && b[3] <= '9':
		return compBzip2
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return compXZ
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd
	case len(b) >= 263 && bytes.Equal(b[257:262], []byte("ustar")):
		return compNone
	}
	return compUnknown
}

// capReader stops a stream past max bytes with ErrTooLarge and when ctx
// ends: it is what makes a compression bomb cheap to refuse.
type capReader struct {
	ctx  context.Context
	r    io.Reader
	n    int64
	max  int64
	what string
}

func (c *capReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.n > c.max {
		return 0, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, c.what, c.max)
	}
	if room := c.max - c.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, c.what, c.max)
	}
	return n, err
}

// decompressor returns a reader of the decompressed data held in data, all
// in process: gzip and bzip2 from the standard library, xz from
// github.com/ulikunitz/xz (its dictionary sizes checked first, see
// checkXZ) and zstd from github.com/klauspost/compress/zstd (window
// bounded, one goroutine). The callers bound the output.
func decompressor(_ context.Context, c compression, data []byte, _ *settings) (io.ReadCloser, error) {
	if c == compXZ {
		if err := checkXZ(data, maxXZDict); err != nil {
			return nil, err
		}
		xr, err := xz.ReaderConfig{}.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: bad xz stream: %v", ErrUnsafeArchive, err)
		}
		return io.NopCloser(xr), nil
	}
	return streamDecompressor(c, bytes.NewReader(data))
}

// streamDecompressor is decompressor for the formats whose decoders are
// bounded without seeing the whole input first: all but xz, whose
// dictionary sizes checkXZ reads from the stream's end.
func streamDecompressor(c compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case compNone:
		return io.NopCloser(r), nil
	case compGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: bad gzip header: %v", ErrUnsafeArchive, err)
		}
		return zr, nil
	case compBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	case compZstd:
		zr, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("%w: bad zstd stream: %v", ErrUnsafeArchive, err)
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("%w: not a tar, tar.gz, tar.bz2, tar.xz or tar.zst archive", ErrUnsafeArchive)
}

// The decoders' own memory, on top of the output the callers bound: the
// largest dictionary xz -9 writes, and zstd's --memory default for -19.
const (
	maxXZDict     = 64 << 20
	maxZstdWindow = 64 << 20
)

// readAllCapped reads r to its end, refusing more than max bytes. hint is
// the expected size, which only sizes the first allocation.
func readAllCapped(ctx context.Context, r io.Reader, limit int64, hint int64, what string) ([]byte, error) {
	w := &sliceWriter{b: make([]byte, 0, min(max(hint, 0), limit)+1)}
	_, err := io.Copy(w, &capReader{ctx: ctx, r: r, max: limit, what: what})
	if err != nil {
		return nil, err
	}
	return w.b, nil
}

// decompressedSizeHint reads the size a gzip member's trailer (ISIZE,
// modulo 4 GiB), a zstd frame header or an xz index states; it is only a
// hint, and readAllCapped bounds it.
func decompressedSizeHint(c compression, data []byte) int64 {
	switch c {
	case compGzip:
		if len(data) >= 18 {
			return int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
		}
	case compXZ:
		if n, err := xzSize(data, maxXZDict); err == nil {
			return n
		}
	case compZstd:
		var h zstd.Header
		if h.Decode(data) == nil && h.HasFCS {
			return int64(min(h.FrameContentSize, 1<<40))
		}
	}
	return 64 << 10
}

// decompressModule undoes the compression a .ko.gz, .ko.xz or .ko.zst
// module carries, as the kernel's module decompression does before it checks
// the signature. The suffix and the content must agree.
func decompressModule(ctx context.Context, name string, data []byte, cfg *settings) ([]byte, error) {
	want := moduleCompression(name)
	got := sniff(data)
	if want == compNone {
		return data, nil
	}
	if got != want {
		return nil, fmt.Errorf("%w: %s does not hold %v data", ErrUnsafeArchive, name, want)
	}
	rc, err := decompressor(ctx, want, data, cfg)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out, err := readAllCapped(ctx, rc, cfg.maxFileSize, decompressedSizeHint(want, data), "decompressed module")
	if err != nil {
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsafeArchive) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, name, err)
	}
	return out, nil
}

// DecompressModule undoes a module's gzip, xz or zstd compression,
// recognised by content, in process and bounded by WithMaxFileSize (default
// DefaultMaxFileSize); data that is none of these is returned unchanged. It
// is the step VerifyPatch applies to a .ko.gz, .ko.xz or .ko.zst, for tools
// that read a module file. Errors are ErrUnsafeArchive or ErrTooLarge.
func DecompressModule(ctx context.Context, data []byte, opts ...Option) ([]byte, error) {
	cfg, err := build("DecompressModule", forDecompress, opts)
	if err != nil {
		return nil, err
	}
	name := "module"
	switch sniff(data) {
	case compGzip:
		name += ".ko.gz"
	case compXZ:
		name += ".ko.xz"
	case compZstd:
		name += ".ko.zst"
	default:
		return data, nil
	}
	return decompressModule(ctx, name, data, cfg)
}
