package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNonSupersededFix(t *testing.T) {
	tests := []struct {
		name   string
		ranges string
		want   string
	}{
		{"single fix", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]`, "1.2.3"},
		{"latest of two fixes", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.20.14"},{"introduced":"1.21.0-0"},{"fixed":"1.21.7"}]}]`, "1.21.7"},
		{"reintroduced after the fix", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"},{"introduced":"1.5.0"}]}]`, ""},
		{"no fix", `[{"type":"SEMVER","events":[{"introduced":"0"}]}]`, ""},
		{"non-semver ranges ignored", `[{"type":"GIT","events":[{"introduced":"0"},{"fixed":"9.9.9"}]}]`, ""},
		{"pseudo-version", `[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.0.0-20260610131716-5dc8f53b70a3"}]}]`, "0.0.0-20260610131716-5dc8f53b70a3"},
	}
	for _, tt := range tests {
		var r []osvRange
		if err := json.Unmarshal([]byte(tt.ranges), &r); err != nil {
			t.Fatal(err)
		}
		if got := nonSupersededFix(r); got != tt.want {
			t.Errorf("%s: nonSupersededFix = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestGenDB(t *testing.T) {
	src := t.TempDir()
	entries := map[string]string{
		"GO-2026-0001.json": `{"id":"GO-2026-0001","modified":"0001-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]},{"package":{"name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.26.9"}]}]}]}`,
		"GO-2026-0002.json": `{"id":"GO-2026-0002","modified":"2026-12-01T00:00:00Z","affected":[{"package":{"name":"example.com/a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
	}
	for name, body := range entries {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "db")
	snap := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	n, err := genDB(src, out, snap)
	if err != nil || n != 2 {
		t.Fatalf("genDB = %d, %v; want 2 entries", n, err)
	}
	b, err := os.ReadFile(filepath.Join(out, "index", "modules.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"path":"example.com/a","vulns":[{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z","fixed":"1.2.0"},{"id":"GO-2026-0002","modified":"2026-12-01T00:00:00Z"}]},{"path":"stdlib","vulns":[{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z","fixed":"1.26.9"}]}]`
	if string(b) != want {
		t.Errorf("modules.json =\n%s\nwant\n%s", b, want)
	}
	b, err = os.ReadFile(filepath.Join(out, "index", "db.json"))
	if err != nil || string(b) != `{"modified":"2026-12-01T00:00:00Z"}` {
		t.Errorf("db.json = %s, %v", b, err)
	}
	b, err = os.ReadFile(filepath.Join(out, "ID", "GO-2026-0002.json"))
	if err != nil || string(b) != entries["GO-2026-0002.json"] {
		t.Errorf("ID/GO-2026-0002.json = %s, %v; want the entry byte for byte", b, err)
	}
	if _, err := genDB(src, out, snap); err == nil {
		t.Error("genDB over an existing database: no error")
	}
	// An entry whose file name is not its ID is refused.
	if err := os.WriteFile(filepath.Join(src, "GO-2026-0003.json"), []byte(`{"id":"GO-2026-0004"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := genDB(src, filepath.Join(t.TempDir(), "db"), snap); err == nil || !strings.Contains(err.Error(), "does not match entry ID") {
		t.Errorf("mismatched ID: err = %v", err)
	}
}

const cfg = `{"config":{"scanner_version":"v1.9.0","go_version":"go1.26.10","db":"file:///db"}}`

func finding(id, module, fixed, fn string) string {
	return `{"finding":{"osv":"` + id + `","fixed_version":"` + fixed + `","trace":[{"module":"` + module + `","version":"v1.0.0","package":"p","function":"` + fn + `"}]}}`
}

func TestReportPolicy(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		wantFailed bool
		wantOut    string
	}{
		{"nothing found", cfg, false, "0 reachable, 0 in required code"},
		{"reachable dependency vulnerability fails", cfg + finding("GO-1", "example.com/a", "v1.2.0", "F"), true, "FAIL  GO-1 example.com/a"},
		{"reachable dependency vulnerability without a fix fails", cfg + finding("GO-1", "example.com/a", "", "F"), true, "FAIL  GO-1 example.com/a"},
		{"unreachable dependency vulnerability is counted", cfg + finding("GO-1", "example.com/a", "v1.2.0", ""), false, "0 reachable, 1 in required code"},
		{"reachable stdlib vulnerability with a fixed release fails", cfg + finding("GO-2", "stdlib", "v1.26.11", "Get"), true, "fixed in Go 1.26.11"},
		{"reachable stdlib vulnerability without a fix is listed", cfg + finding("GO-2", "stdlib", "", "Get"), false, "listed (nothing to upgrade to)  GO-2 stdlib"},
	}
	for _, tt := range tests {
		var out strings.Builder
		failed, err := report(strings.NewReader(tt.stream), &out)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if failed != tt.wantFailed || !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("%s: failed = %v, output:\n%s\nwant failed = %v and %q", tt.name, failed, out.String(), tt.wantFailed, tt.wantOut)
		}
	}
	if _, err := report(strings.NewReader(""), &strings.Builder{}); err == nil {
		t.Error("empty stream: no error")
	}
	if _, err := report(strings.NewReader(cfg+"{"), &strings.Builder{}); err == nil {
		t.Error("truncated stream: no error")
	}
}
