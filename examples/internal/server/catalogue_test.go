package server

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/pgtest"
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

func putBytes(t testing.TB, c Catalogue, info PatchInfo, data []byte) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "patch-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(context.Background(), info, f); err != nil {
		t.Fatal(err)
	}
}

func readPatch(t testing.TB, c Catalogue, name string) (PatchInfo, string, error) {
	t.Helper()
	info, rc, err := c.Open(context.Background(), name)
	if err != nil {
		return info, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return info, string(b), err
}

// TestFileCatalogueSurvivesRestart: the entries and tarballs in
// --state-dir are read back by a new catalogue on the same directory,
// including an index.json of earlier versions.
func TestFileCatalogueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	info := PatchInfo{Filename: "livepatch-k-1-x86_64.tar.gz", SHA256: sha256Hex([]byte("data")), Kernel: "k", Version: "1", Size: 4, Added: time.Now().UTC()}
	putBytes(t, c, info, []byte("data"))
	c2, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, data, err := readPatch(t, c2, info.Filename)
	if err != nil || data != "data" || got.SHA256 != info.SHA256 {
		t.Fatalf("after restart: %+v %q %v", got, data, err)
	}
	if _, _, err := c2.Open(ctx, "missing.tar"); err != ErrNoPatch {
		t.Fatalf("missing patch: %v", err)
	}
}

// TestFileCatalogueConvertsIndex: an index.json of earlier versions is
// read once and rewritten as one entry per patch; unsafe names in it are
// dropped.
func TestFileCatalogueConvertsIndex(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	legacy := `[{"filename":"a.tar","sha256":"` + sha256Hex([]byte("a")) + `","kernel":"k","version":"1","size":1,"added":"` + now.Format(time.RFC3339) + `"},
		{"filename":"../evil.tar","sha256":"x","kernel":"k","version":"1","size":1,"added":"` + now.Format(time.RFC3339) + `"}]`
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.tar"), []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := c.List(context.Background()); len(l) != 1 || l[0].Filename != "a.tar" {
		t.Fatalf("converted: %+v", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); !os.IsNotExist(err) {
		t.Errorf("index.json still there: %v", err)
	}
	c2, err := newFileCatalogue(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := readPatch(t, c2, "a.tar"); err != nil || got != "a" {
		t.Errorf("after conversion and restart: %q %v", got, err)
	}
}

// TestCatalogues runs the same checks on both stores: kernel filtering,
// replacement touching one entry, and chunked reads with seeks across
// chunk boundaries.
func TestCatalogues(t *testing.T) {
	stores := map[string]func(t *testing.T) Catalogue{
		"file": func(t *testing.T) Catalogue {
			c, err := newFileCatalogue(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"postgresql": func(t *testing.T) Catalogue {
			db := pgtest.Open(t)
			c, err := newPGCatalogue(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			c := mk(t)
			ctx := context.Background()
			big := make([]byte, 3*pgChunkSize+17)
			for i := range big {
				big[i] = byte(i * 7)
			}
			now := time.Now().UTC().Truncate(time.Second)
			a := PatchInfo{Filename: "a.tar", SHA256: sha256Hex(big), Kernel: "k1", Version: "1", Size: int64(len(big)), Added: now}
			b := PatchInfo{Filename: "b.tar", SHA256: sha256Hex([]byte("b")), Kernel: "k2", Version: "1", Size: 1, Added: now}
			putBytes(t, c, a, big)
			putBytes(t, c, b, []byte("b"))
			k1, err := c.ListKernel(ctx, "k1")
			if err != nil || len(k1) != 1 || k1[0].Filename != "a.tar" {
				t.Fatalf("ListKernel k1: %+v %v", k1, err)
			}
			if none, err := c.ListKernel(ctx, "k3"); err != nil || len(none) != 0 {
				t.Fatalf("ListKernel k3: %+v %v", none, err)
			}
			_, got, err := readPatch(t, c, "a.tar")
			if err != nil || got != string(big) {
				t.Fatalf("read a.tar: %d bytes, %v", len(got), err)
			}
			_, rc, err := c.Open(ctx, "a.tar")
			if err != nil {
				t.Fatal(err)
			}
			off := int64(2*pgChunkSize - 5)
			if _, err := rc.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			part := make([]byte, 10)
			if _, err := io.ReadFull(rc, part); err != nil || string(part) != string(big[off:off+10]) {
				t.Fatalf("read across a chunk boundary: %v", err)
			}
			if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != int64(len(big)) {
				t.Fatalf("size by seek: %d %v", end, err)
			}
			rc.Close()
			// Replacing a.tar moves it to k2: k1 is empty, k2 has both.
			a2 := PatchInfo{Filename: "a.tar", SHA256: sha256Hex([]byte("new")), Kernel: "k2", Version: "2", Size: 3, Added: now}
			putBytes(t, c, a2, []byte("new"))
			if k1, _ := c.ListKernel(ctx, "k1"); len(k1) != 0 {
				t.Errorf("k1 after the move: %+v", k1)
			}
			if k2, _ := c.ListKernel(ctx, "k2"); len(k2) != 2 || k2[0].Filename != "a.tar" || k2[0].Version != "2" {
				t.Errorf("k2 after the move: %+v", k2)
			}
			if _, got, err := readPatch(t, c, "a.tar"); err != nil || got != "new" {
				t.Errorf("a.tar after replacement: %q %v", got, err)
			}
			all, err := c.List(ctx)
			if err != nil || len(all) != 2 {
				t.Errorf("List: %+v %v", all, err)
			}
		})
	}
}
