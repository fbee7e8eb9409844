package main

import (
	"context"
	"fmt"

	"github.com/lpsec/lpsec/patchverify"
)

// readModule reads a module, decompressing .ko.gz/.ko.xz/.ko.zst (found by
// content, as the kernel's module loader does) in process, with a size cap:
// no xz or zstd program is needed.
func readModule(name string) ([]byte, error) {
	raw, err := readBounded(name, maxModule)
	if err != nil {
		return nil, err
	}
	data, err := patchverify.DecompressModule(context.Background(), raw, patchverify.WithMaxFileSize(maxModule))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}
