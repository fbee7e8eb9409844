package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/patchverify"
)

func pkg(ctx context.Context, args []string) error {
	fs := cli.NewFlagSet("patchtool package", "--kernel K --flavour F --version N --arch A SIGNED.ko [-o OUT]",
		"Builds a patch tarball: metadata.json and the signed module (refused if unsigned).\nThe default output name is livepatch-<kernel>-<flavour>-<version>-<arch>.tar.gz\n(.tar.bz2 with --bzip2, what live-patch services ship; needs bzip2(1)).")
	kernel := fs.String("kernel", "", "kernel `release` without flavour, e.g. 6.1.0-18")
	flavour := fs.String("flavour", "generic", "kernel `flavour`, e.g. generic or amd64")
	version := fs.Int("version", 1, "patch `version` (increasing)")
	arch := fs.String("arch", "x86_64", "`architecture`")
	bz := fs.Bool("bzip2", false, "compress with bzip2 instead of gzip")
	out := fs.String("o", "", "output `file`")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("package needs exactly one signed MODULE")
	}
	if *kernel == "" {
		return cli.Usagef("package needs --kernel")
	}
	if *version < 1 {
		return cli.Usagef("--version must be at least 1")
	}
	module, err := readBounded(pos[0], maxModule)
	if err != nil {
		return err
	}
	if _, err := patchverify.ParseModuleSignature(module); err != nil {
		return fmt.Errorf("%s: %w (sign it first: patchtool sign)", pos[0], err)
	}
	modName := filepath.Base(pos[0])
	if !strings.HasSuffix(modName, ".ko") {
		modName = strings.TrimSuffix(modName, filepath.Ext(modName)) + ".ko"
	}
	meta := patchverify.Metadata{Kernel: *kernel, Flavour: *flavour, Version: *version, Architecture: *arch, Module: modName}
	var buf bytes.Buffer
	if err := patchverify.BuildPatch(&buf, meta, module); err != nil {
		return err
	}
	data, ext := buf.Bytes(), ".tar.gz"
	if *bz {
		if data, err = toBzip2(ctx, data); err != nil {
			return err
		}
		ext = ".tar.bz2"
	}
	dst := *out
	if dst == "" {
		k := *kernel
		if *flavour != "" {
			k += "-" + *flavour
		}
		dst = fmt.Sprintf("livepatch-%s-%d-%s%s", k, *version, *arch, ext)
	}
	if err := writeAtomic(dst, data, 0o644); err != nil {
		return err
	}
	fmt.Println(dst)
	return nil
}

// toBzip2 recompresses BuildPatch's gzip output with bzip2(1): the standard
// library reads bzip2 but cannot write it.
func toBzip2(ctx context.Context, gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	tarball, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("bzip2"); err != nil {
		return nil, fmt.Errorf("--bzip2 needs bzip2(1) (Debian package bzip2)")
	}
	cmd := exec.CommandContext(ctx, "bzip2", "-c", "-9")
	cmd.Stdin = bytes.NewReader(tarball)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bzip2: %v %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}
