package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"
)

// readModule reads a module, decompressing .ko.gz/.ko.xz/.ko.zst (found
// by content, as the kernel's module loader does) with a size cap.
// patchverify decompresses modules inside tarballs but does not export that
// step, so patchtool does it here with the same tools (xz and zstd, which
// the standard library lacks).
func readModule(name string) ([]byte, error) {
	raw, err := readBounded(name, maxModule)
	if err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(raw, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return capRead(name, zr)
	case bytes.HasPrefix(raw, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return external(name, raw, "xz", "--decompress", "--stdout", "--quiet", "--memlimit-decompress=64MiB")
	case bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return external(name, raw, "zstd", "--decompress", "--stdout", "--quiet", "--memory=64MB")
	}
	return raw, nil
}

func capRead(name string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxModule+1))
	if err != nil {
		return nil, fmt.Errorf("%s: decompressing: %w", name, err)
	}
	if len(data) > maxModule {
		return nil, fmt.Errorf("%s: decompresses to more than %d bytes", name, maxModule)
	}
	return data, nil
}

func external(name string, raw []byte, prog string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(prog); err != nil {
		return nil, fmt.Errorf("%s is %s-compressed and %s is not installed", name, prog, prog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	data, rerr := capRead(name, out)
	if rerr != nil {
		cancel()
		_ = cmd.Wait()
		return nil, rerr
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %s: %v %s", name, prog, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return data, nil
}
