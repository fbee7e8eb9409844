// Command testsum reads `go test -json` and prints what plain `go test`
// would (package result lines, the full output of failed tests, build
// errors), then a closing count, and keeps a record of skipped tests so
// the skips of a whole run can be summarised with their reasons at the end.
//
//	go test -json ./... | testsum [-record FILE]
//	testsum skips [-expected FILE] [-strict] FILE...
//
// The first form exits non-zero when a test, a package or a build failed.
// -record appends one line per finished test (pass or skip, with the skip
// reason) to FILE.
//
// The second form reads such records from several passes, and prints every
// test that was skipped in all passes it appeared in, with its reasons. A
// test skipped in one pass but run in another (a TestXxxAllocs skipped under
// -race and run in the allocation pass) is not a skip. With -strict (make
// test sets it when CI=true) a skip that is not listed in the -expected file
// fails: CI never skips a test silently. The expected file holds lines
// "PACKAGE TEST  # why", PACKAGE relative to the module ("." for the root),
// TEST a test name or a prefix ending in "/" for all its subtests.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "skips" {
		fs := flag.NewFlagSet("skips", flag.ExitOnError)
		expected := fs.String("expected", "", "file of expected skips")
		strict := fs.Bool("strict", false, "fail on a skip not in the expected file")
		module := fs.String("module", "", "module path, trimmed from package names")
		totals := fs.String("totals", "", "also write the closing count line to this file")
		fs.Parse(os.Args[2:])
		ok, err := skips(os.Stdout, *module, *expected, *strict, *totals, fs.Args())
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		if !ok {
			os.Exit(1)
		}
		return
	}
	record := flag.String("record", "", "append one line per finished test to this file")
	flag.Parse()
	var rec io.Writer = io.Discard
	if *record != "" {
		f, err := os.OpenFile(*record, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		defer f.Close()
		rec = f
	}
	s, err := run(os.Stdin, os.Stdout, rec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	if s.failed > 0 || s.pkgFailed > 0 {
		os.Exit(1)
	}
}

// event is test2json's output (go doc test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

type stats struct {
	passed, failed, skipped, pkgFailed int
}

// Record is one finished test, as written by -record (one JSON object per line).
type Record struct {
	Action  string `json:"action"` // "pass" or "skip"
	Package string `json:"package"`
	Test    string `json:"test"`
	Reason  string `json:"reason,omitempty"`
}

func run(r io.Reader, w, rec io.Writer) (stats, error) {
	var s stats
	out := bufio.NewWriter(w)
	defer out.Flush()
	enc := json.NewEncoder(rec)
	// Output of each running test, kept until it ends: printed if it
	// fails, kept as the reason if it skips, dropped if it passes.
	buf := map[string][]string{}
	dec := json.NewDecoder(r)
	for {
		var e event
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			// Not JSON: go test itself failed before running (a bad
			// flag); what it said is already on stderr.
			return s, fmt.Errorf("reading go test -json: %w", err)
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			out.WriteString(e.Output)
		case e.Action == "build-fail":
			s.pkgFailed++
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				out.WriteString(e.Output)
				out.Flush()
			}
		case e.Test == "" && e.Action == "fail":
			s.pkgFailed++
			// A panic or timeout ends the package with tests that
			// never finished: show what they printed.
			for k, lines := range buf {
				if strings.HasPrefix(k, e.Package+" ") {
					out.WriteString(strings.Join(lines, ""))
					delete(buf, k)
				}
			}
			out.Flush()
		case e.Test == "":
		case e.Action == "output":
			buf[key] = append(buf[key], e.Output)
		case e.Action == "pass":
			s.passed++
			delete(buf, key)
			if err := enc.Encode(Record{Action: "pass", Package: e.Package, Test: e.Test}); err != nil {
				return s, err
			}
		case e.Action == "skip":
			s.skipped++
			if err := enc.Encode(Record{Action: "skip", Package: e.Package, Test: e.Test, Reason: reason(buf[key])}); err != nil {
				return s, err
			}
			delete(buf, key)
		case e.Action == "fail":
			s.failed++
			for _, l := range buf[key] {
				if !strings.HasPrefix(l, "=== ") {
					out.WriteString(l)
				}
			}
			delete(buf, key)
			out.Flush()
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	return s, nil
}

// reason is a skipped test's own output less test2json's framing lines.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}

type expectation struct {
	pkg, test string
}

func readExpected(name string) ([]expectation, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var list []expectation
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		spec, why, found := strings.Cut(t, "#")
		f := strings.Fields(spec)
		if !found || strings.TrimSpace(why) == "" || len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"PACKAGE TEST  # why it may skip\"", name, i+1)
		}
		list = append(list, expectation{f[0], f[1]})
	}
	return list, nil
}

func (x expectation) matches(pkg, test string) bool {
	if x.pkg != pkg {
		return false
	}
	if strings.HasSuffix(x.test, "/") {
		return strings.HasPrefix(test, x.test) || test == strings.TrimSuffix(x.test, "/")
	}
	return x.test == test
}

// skips prints the tests skipped in every pass they appeared in and
// reports false when strict and one of them was not expected.
func skips(w io.Writer, module, expectedFile string, strict bool, totals string, files []string) (bool, error) {
	expected, err := readExpected(expectedFile)
	if err != nil {
		return false, err
	}
	ran := map[string]bool{}
	reasons := map[string]string{}
	passes := 0
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return false, err
		}
		dec := json.NewDecoder(f)
		for {
			var r Record
			if err := dec.Decode(&r); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				f.Close()
				return false, fmt.Errorf("%s: %w", name, err)
			}
			pkg := strings.TrimPrefix(strings.TrimPrefix(r.Package, module), "/")
			if pkg == "" {
				pkg = "."
			}
			key := pkg + " " + r.Test
			switch r.Action {
			case "pass":
				ran[key] = true
				passes++
			case "skip":
				if _, ok := reasons[key]; !ok || r.Reason != "" {
					reasons[key] = r.Reason
				}
			}
		}
		f.Close()
	}
	var keys []string
	for k := range reasons {
		if !ran[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	ok := true
	unexpected := 0
	fmt.Fprintf(w, "skipped tests: %d\n", len(keys))
	for _, k := range keys {
		pkg, test, _ := strings.Cut(k, " ")
		mark := "  "
		isExpected := false
		for _, x := range expected {
			if x.matches(pkg, test) {
				isExpected = true
				break
			}
		}
		if !isExpected {
			mark = "! "
			unexpected++
		}
		r := reasons[k]
		if r == "" {
			r = "(no reason given)"
		}
		fmt.Fprintf(w, "%s%s %s: %s\n", mark, pkg, test, r)
	}
	if unexpected > 0 {
		fmt.Fprintf(w, "%d skip(s) marked ! are not in %s\n", unexpected, expectedFile)
		if strict {
			fmt.Fprintln(w, "CI fails on a skip it did not expect: make the test run here, or add it to that file with the reason")
			ok = false
		}
	}
	// The closing count of the whole run: every pass of every test run,
	// and the skips above.
	failed := 0
	if !ok {
		failed = unexpected
	}
	line := fmt.Sprintf("tests: %d passed, %d failed, %d skipped\n", passes, failed, len(keys))
	fmt.Fprint(w, line)
	if totals != "" {
		if err := os.WriteFile(totals, []byte(line), 0o644); err != nil {
			return false, err
		}
	}
	return ok, nil
}
