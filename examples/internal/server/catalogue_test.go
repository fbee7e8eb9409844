package server

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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

// TestFileCatalogueCrashAtEveryStep stops an upload of v11 over v10 after
// each step of Put (runtime.Goexit: nothing after the step runs, as with
// a kill; the page cache keeps what was written) and opens the directory
// again: it lists exactly one entry whose SHA-256 is the bytes it serves,
// v10 before the entry's commit and v11 from it on, and nothing else is
// left in the directory. Before the entry was written last and named its
// tarball by hash, a stop after "tarball-renamed" listed v10's SHA-256 and
// served v11's bytes.
func TestFileCatalogueCrashAtEveryStep(t *testing.T) {
	v10, v11 := []byte("version ten"), []byte("version eleven, longer")
	now := time.Now().UTC().Truncate(time.Second)
	info := func(b []byte, v string) PatchInfo {
		return PatchInfo{Filename: "livepatch-k-x86_64.tar", SHA256: sha256Hex(b), Kernel: "k", Version: v, Size: int64(len(b)), Added: now}
	}
	committed := false
	for _, step := range PutSteps {
		if step == "entry-renamed" {
			committed = true
		}
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			c, err := newFileCatalogue(dir)
			if err != nil {
				t.Fatal(err)
			}
			putBytes(t, c, info(v10, "10"), v10)
			c.step = func(s string) {
				if s == step {
					runtime.Goexit()
				}
			}
			stopped := make(chan bool)
			go func() {
				finished := false
				defer func() { stopped <- !finished }()
				f, err := os.CreateTemp(t.TempDir(), "patch-*")
				if err == nil {
					_, err = f.Write(v11)
				}
				if err != nil {
					panic(err)
				}
				_ = c.Put(context.Background(), info(v11, "11"), f)
				finished = true
			}()
			if !<-stopped {
				t.Fatalf("Put ran past step %s", step)
			}
			c2, err := newFileCatalogue(dir)
			if err != nil {
				t.Fatal(err)
			}
			list, _ := c2.List(context.Background())
			if len(list) != 1 {
				t.Fatalf("listed %+v, want one entry", list)
			}
			got, data, err := readPatch(t, c2, list[0].Filename)
			if err != nil {
				t.Fatal(err)
			}
			if sha256Hex([]byte(data)) != got.SHA256 || got.SHA256 != list[0].SHA256 {
				t.Fatalf("lists %s, serves %q (%s)", list[0].SHA256, data, sha256Hex([]byte(data)))
			}
			want := v10
			if committed {
				want = v11
			}
			if data != string(want) {
				t.Errorf("serves %q, want %q", data, want)
			}
			blobs, _ := os.ReadDir(filepath.Join(dir, blobDir))
			top, _ := os.ReadDir(dir)
			if len(blobs) != 1 || len(top) != 2 {
				t.Errorf("left in the directory: %v, blobs %v", top, blobs)
			}
		})
	}
}

// TestFileCatalogueRepairsAtStart: what a crash or a hand edit leaves is
// repaired at start-up with exactly these outcomes.
func TestFileCatalogueRepairsAtStart(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	entry := func(name string, data []byte) string {
		js, _ := json.Marshal(PatchInfo{Filename: name, SHA256: sha256Hex(data), Kernel: "k", Version: "1", Size: int64(len(data)), Added: now})
		return string(js)
	}
	for _, tc := range []struct {
		name    string
		files   map[string]string
		listed  []string
		left    []string // every file left, sorted
		wantErr string
	}{
		{"entry without tarball is dropped",
			map[string]string{"a.tar.json": entry("a.tar", []byte("a"))}, nil, []string{"blobs"}, ""},
		{"tarball of another size is not served",
			map[string]string{"a.tar.json": entry("a.tar", []byte("a")), "blobs/" + sha256Hex([]byte("a")): "ab"}, nil, []string{"blobs"}, ""},
		{"tarball without entry is removed",
			map[string]string{"blobs/" + sha256Hex([]byte("x")): "x"}, nil, []string{"blobs"}, ""},
		{"uncommitted entry is removed",
			map[string]string{"a.tar.json.tmp": entry("a.tar", []byte("a")), "blobs/" + sha256Hex([]byte("a")): "a"}, nil, []string{"blobs"}, ""},
		{"earlier layout: tarball beside its entry is moved",
			map[string]string{"a.tar.json": entry("a.tar", []byte("a")), "a.tar": "a"}, []string{"a.tar"},
			[]string{"a.tar.json", "blobs", "blobs/" + sha256Hex([]byte("a"))}, ""},
		{"earlier layout: tarball not matching its entry is not served",
			map[string]string{"a.tar.json": entry("a.tar", []byte("a")), "a.tar": "b"}, nil, []string{"blobs"}, ""},
		{"entry naming another file",
			map[string]string{"a.tar.json": entry("b.tar", []byte("a"))}, nil, nil, "not an entry for a.tar"},
		{"entry with a path for a hash",
			map[string]string{"a.tar.json": `{"filename":"a.tar","sha256":"../../etc/passwd","size":1}`}, nil, nil, "not an entry for a.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, blobDir), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := newFileCatalogue(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			list, _ := c.List(context.Background())
			var names []string
			for _, p := range list {
				names = append(names, p.Filename)
				if _, data, err := readPatch(t, c, p.Filename); err != nil || sha256Hex([]byte(data)) != p.SHA256 {
					t.Errorf("%s: serves other bytes than listed (%v)", p.Filename, err)
				}
			}
			if !slices.Equal(names, tc.listed) {
				t.Errorf("listed %v, want %v", names, tc.listed)
			}
			var left []string
			_ = filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error {
				if rel, _ := filepath.Rel(dir, p); rel != "." {
					left = append(left, filepath.ToSlash(rel))
				}
				return nil
			})
			if !slices.Equal(left, tc.left) {
				t.Errorf("files left %v, want %v", left, tc.left)
			}
		})
	}
}
