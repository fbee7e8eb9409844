package server

import (
	"context"
	"testing"
	"time"
)

func TestValidFilename(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"livepatch-6.1.0-18-amd64-1-x86_64.tar.bz2", true},
		{"livepatch-6.1.0-18-generic-3-x86_64.tar.gz", true},
		{"patch.tar", true},
		{"../etc/passwd.tar", false},
		{"a/b.tar.gz", false},
		{`a\b.tar.gz`, false},
		{".hidden.tar", false},
		{"x..y.tar", false},
		{"livepatch.zip", false},
		{"livepatch.tar.bz2\x00.txt", false},
		{"", false},
		{string(make([]byte, 300)) + ".tar", false},
	} {
		if got := ValidFilename(tc.name); got != tc.ok {
			t.Errorf("ValidFilename(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestFileCatalogueSurvivesRestart: the index and tarballs in --state-dir
// are read back by a new catalogue on the same directory.
func TestFileCatalogueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	info := PatchInfo{Filename: "livepatch-k-1-x86_64.tar.gz", SHA256: sha256Hex([]byte("data")), Kernel: "k", Version: "1", Size: 4, Added: time.Now().UTC()}
	if err := c.Put(ctx, info, []byte("data")); err != nil {
		t.Fatal(err)
	}
	c2, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, data, err := c2.Get(ctx, info.Filename)
	if err != nil || string(data) != "data" || got.SHA256 != info.SHA256 {
		t.Fatalf("after restart: %+v %q %v", got, data, err)
	}
	if _, _, err := c2.Get(ctx, "missing.tar"); err != ErrNoPatch {
		t.Fatalf("missing patch: %v", err)
	}
}
