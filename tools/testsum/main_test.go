package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A go test -json stream: a pass, a skip with a reason, a failure with
// its log, and a package that failed to build.
const stream = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"    a_test.go:5: chatter\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK"}
{"Action":"run","Package":"m/a","Test":"TestPeer"}
{"Action":"output","Package":"m/a","Test":"TestPeer","Output":"=== RUN   TestPeer\n"}
{"Action":"output","Package":"m/a","Test":"TestPeer","Output":"    a_test.go:9: skipped: htpasswd not found\n"}
{"Action":"output","Package":"m/a","Test":"TestPeer","Output":"--- SKIP: TestPeer (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestPeer"}
{"Action":"run","Package":"m/a","Test":"TestBad"}
{"Action":"output","Package":"m/a","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"m/a","Test":"TestBad","Output":"    a_test.go:12: got 1, want 2\n"}
{"Action":"output","Package":"m/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestBad"}
{"Action":"output","Package":"m/a","Output":"FAIL\n"}
{"Action":"output","Package":"m/a","Output":"FAIL\tm/a\t0.01s\n"}
{"Action":"fail","Package":"m/a"}
{"ImportPath":"m/b","Action":"build-output","Output":"b/b.go:3:1: syntax error\n"}
{"ImportPath":"m/b","Action":"build-fail"}
`

func TestRun(t *testing.T) {
	var out, rec strings.Builder
	s, err := run(strings.NewReader(stream), &out, &rec)
	if err != nil {
		t.Fatal(err)
	}
	if s != (stats{passed: 1, failed: 1, skipped: 1, pkgFailed: 2}) {
		t.Errorf("stats = %+v", s)
	}
	got := out.String()
	for _, want := range []string{"a_test.go:12: got 1, want 2\n--- FAIL: TestBad", "FAIL\tm/a\t0.01s\n", "b/b.go:3:1: syntax error\n", "1 passed, 1 failed, 1 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"chatter", "=== RUN", "htpasswd"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has %q (plain go test would not print it):\n%s", unwanted, got)
		}
	}
	wantRec := `{"action":"pass","package":"m/a","test":"TestOK"}
{"action":"skip","package":"m/a","test":"TestPeer","reason":"a_test.go:9: skipped: htpasswd not found"}
`
	if rec.String() != wantRec {
		t.Errorf("records =\n%s\nwant\n%s", rec.String(), wantRec)
	}
}

func TestSkips(t *testing.T) {
	dir := t.TempDir()
	race := filepath.Join(dir, "race.jsonl")
	allocs := filepath.Join(dir, "allocs.jsonl")
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(race, `{"action":"skip","package":"m/a","test":"TestAllocs","reason":"race detector"}
{"action":"skip","package":"m/a","test":"TestPeer","reason":"skipped: htpasswd not found"}
{"action":"skip","package":"m","test":"TestMachineID/bind","reason":"no /etc/machine-id"}
`)
	write(allocs, `{"action":"pass","package":"m/a","test":"TestAllocs"}
`)
	expected := filepath.Join(dir, "expected")
	write(expected, "# comment\n. TestMachineID/  # containers have no machine ID\n")

	var out strings.Builder
	ok, err := skips(&out, "m", expected, true, "", []string{race, allocs, filepath.Join(dir, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Error("strict with an unexpected skip: ok")
	}
	got := out.String()
	for _, want := range []string{"skipped tests: 2\n", "  . TestMachineID/bind: no /etc/machine-id\n", "! a TestPeer: skipped: htpasswd not found\n", "1 skip(s) marked !", "tests: 1 passed, 1 failed, 2 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestAllocs") {
		t.Errorf("a test skipped under -race but run in the allocation pass is listed:\n%s", got)
	}
	if ok, _ := skips(&strings.Builder{}, "m", expected, false, "", []string{race, allocs}); !ok {
		t.Error("not strict: an unexpected skip failed")
	}
	write(expected, ". TestMachineID/\n")
	if _, err := skips(&strings.Builder{}, "m", expected, true, "", []string{race}); err == nil {
		t.Error("an expected skip without a reason: no error")
	}
}
