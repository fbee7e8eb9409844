package patchverify

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
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

// decompressor returns a reader of the decompressed data. gzip and bzip2 use
// the standard library; xz and zstd, which it lacks, run the xz and zstd
// programs with their own memory limits, fed from memory and killed on close.
func decompressor(ctx context.Context, c compression, data []byte, cfg *patchConfig) (io.ReadCloser, error) {
	switch c {
	case compNone:
		return io.NopCloser(bytes.NewReader(data)), nil
	case compGzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: bad gzip header: %v", ErrUnsafeArchive, err)
		}
		return zr, nil
	case compBzip2:
		return io.NopCloser(bzip2.NewReader(bytes.NewReader(data))), nil
	case compXZ, compZstd:
		if !cfg.externalDecomp {
			return nil, fmt.Errorf("%w: %v decompression disabled", ErrUnsafeArchive, c)
		}
		prog, args := "xz", []string{"--decompress", "--stdout", "--quiet", "--threads=1", "--memlimit-decompress=64MiB"}
		if c == compZstd {
			prog, args = "zstd", []string{"--decompress", "--stdout", "--quiet", "--memory=64MB"}
		}
		return startProgram(ctx, prog, args, data)
	}
	return nil, fmt.Errorf("%w: not a tar, tar.gz, tar.bz2 or tar.xz archive", ErrUnsafeArchive)
}

type programReader struct {
	io.Reader
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr *bytes.Buffer
	prog   string
	done   bool
}

func startProgram(ctx context.Context, prog string, args []string, data []byte) (*programReader, error) {
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("patchverify: decompressing needs the %s program: %w", prog, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewReader(data)
	stderr := new(bytes.Buffer)
	cmd.Stderr = &limitedWriter{w: stderr, left: 1024}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("patchverify: starting %s: %w", prog, err)
	}
	return &programReader{Reader: out, cmd: cmd, cancel: cancel, stderr: stderr, prog: prog}, nil
}

func (p *programReader) Read(b []byte) (int, error) {
	n, err := p.Reader.Read(b)
	if err == io.EOF && !p.done {
		// Report a corrupt stream instead of a short one.
		p.done = true
		if werr := p.cmd.Wait(); werr != nil {
			p.cancel()
			return n, fmt.Errorf("%w: %s: corrupt data: %s", ErrUnsafeArchive, p.prog, bytes.TrimSpace(p.stderr.Bytes()))
		}
	}
	return n, err
}

func (p *programReader) Close() error {
	p.cancel()
	if !p.done {
		p.done = true
		_ = p.cmd.Wait() // killed by cancel, or already finished
	}
	return nil
}

type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > l.left {
		p = p[:l.left]
	}
	l.left -= len(p)
	_, _ = l.w.Write(p)
	return n, nil
}

// readAllCapped reads r to its end, refusing more than max bytes.
func readAllCapped(ctx context.Context, r io.Reader, max int64, what string) ([]byte, error) {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, &capReader{ctx: ctx, r: r, max: max, what: what})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decompressModule undoes the compression a .ko.gz, .ko.xz or .ko.zst
// module carries, as the kernel's module decompression does before it checks
// the signature. The suffix and the content must agree.
func decompressModule(ctx context.Context, name string, data []byte, cfg *patchConfig) ([]byte, error) {
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
	out, err := readAllCapped(ctx, rc, cfg.maxFileSize, "decompressed module")
	if err != nil {
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsafeArchive) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, name, err)
	}
	return out, nil
}
