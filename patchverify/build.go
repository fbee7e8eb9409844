package patchverify

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"
)

// BuildPatch writes a patch tarball holding metadata.json and the signed
// module under meta.Module (a plain file name ending in .ko). It refuses,
// with ErrMetadataMismatch, metadata that disagrees with the module's
// .modinfo (kernel release in vermagic, name, version), as VerifyPatch would. The output is
// a gzip-compressed tar (the standard library cannot write bzip2; VerifyPatch
// recognises either by content, so name the file .tar.gz, or recompress with
// bzip2(1) for a .tar.bz2). It is reproducible: the same input gives the same
// bytes, so the checksum a server publishes is stable.
func BuildPatch(w io.Writer, meta Metadata, signedModule []byte) error {
	if meta.Module == "" || path.Base(meta.Module) != meta.Module || moduleCompression(meta.Module) != compNone || meta.Module == ".ko" {
		return fmt.Errorf("patchverify: BuildPatch: module name %q must be a plain file name ending in .ko", meta.Module)
	}
	sig, err := ParseModuleSignature(signedModule)
	if err != nil {
		return fmt.Errorf("patchverify: BuildPatch: %w", err)
	}
	// Refuse to build what VerifyPatch would refuse: metadata that
	// disagrees with the signed module's .modinfo.
	info, err := ReadModuleInfo(sig.Content)
	if err != nil {
		return fmt.Errorf("patchverify: BuildPatch: %w", err)
	}
	if err := bindMetadata(&meta, info, meta.Module); err != nil {
		return fmt.Errorf("patchverify: BuildPatch: %w", err)
	}
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	metaJSON = append(metaJSON, '\n')
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{metadataName, metaJSON}, {meta.Module, signedModule}} {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Size:     int64(len(f.data)),
			Mode:     0o644,
			ModTime:  time.Unix(0, 0),
			Uname:    "root",
			Gname:    "root",
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("patchverify: BuildPatch: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("patchverify: BuildPatch: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("patchverify: BuildPatch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("patchverify: BuildPatch: %w", err)
	}
	return nil
}
