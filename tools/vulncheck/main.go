// Command vulncheck is lpsec's offline vulnerability scan, in two steps that
// scripts/vulncheck.sh runs:
//
//	vulncheck gendb -src DIR -out DIR -modified TIME
//	go tool govulncheck -db file://OUT -format json ./... | vulncheck report
//
// gendb turns a snapshot of the golang.org/x/vulndb module (its data/osv
// directory of OSV JSON entries, one file per GO-YYYY-NNNN ID) into a
// database in the v1 schema that govulncheck reads with -db file:///...:
// index/db.json, index/modules.json and ID/<ID>.json, as described at
// go.dev/security/vuln/database#api and read by golang.org/x/vuln's
// internal/client.
//
// report reads govulncheck's JSON stream and applies lpsec's policy:
//   - a reachable vulnerability (a symbol-level finding) in any dependency
//     fails the scan;
//   - a reachable vulnerability in the standard library is listed with the
//     Go release that fixes it, and fails the scan when such a release
//     exists (the Go in use is older than the fix: move the toolchain line
//     to it); one with no fixed release yet is listed without failing,
//     since no change to lpsec can fix it;
//   - vulnerabilities in imported packages or required modules whose
//     vulnerable code is not reachable are counted, not failed on.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gendb":
		fs := flag.NewFlagSet("gendb", flag.ExitOnError)
		src := fs.String("src", "", "directory holding the OSV entries (golang.org/x/vulndb's data/osv)")
		out := fs.String("out", "", "directory to write the database to (must not exist)")
		mod := fs.String("modified", "", "snapshot time (RFC 3339) for entries whose modified time is unset")
		fs.Parse(os.Args[2:])
		if *src == "" || *out == "" {
			usage()
		}
		var t time.Time
		if *mod != "" {
			if t, err = time.Parse(time.RFC3339, *mod); err != nil {
				break
			}
		}
		var n int
		n, err = genDB(*src, *out, t)
		if err == nil {
			fmt.Printf("vulncheck: database of %d entries written to %s\n", n, *out)
		}
	case "report":
		var failed bool
		failed, err = report(os.Stdin, os.Stdout)
		if err == nil && failed {
			os.Exit(1)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vulncheck gendb -src DIR -out DIR [-modified TIME] | vulncheck report < govulncheck.json")
	os.Exit(2)
}

// The subset of an OSV entry the indexes are built from; the entry files
// themselves are copied byte for byte.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Module struct {
			Path string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

// genDB writes the v1 database for the entries in src to out. It writes to
// a temporary sibling and renames it into place, so an interrupted run never
// leaves a half-written database that a later run would take as complete.
func genDB(src, out string, snapshot time.Time) (int, error) {
	if _, err := os.Stat(out); err == nil {
		return 0, fmt.Errorf("%s already exists", out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".vulndb-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Mkdir(filepath.Join(tmp, "ID"), 0o755); err != nil {
		return 0, err
	}
	if err := os.Mkdir(filepath.Join(tmp, "index"), 0o755); err != nil {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no OSV entries (*.json) in %s", src)
	}
	meta := dbMeta{Modified: snapshot}
	modules := map[string]*moduleMeta{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if e.ID == "" || filepath.Base(f) != e.ID+".json" {
			return 0, fmt.Errorf("%s: file name does not match entry ID %q", f, e.ID)
		}
		// The module snapshot carries no modification times (the
		// database's publisher derives them from git history); the
		// snapshot's own time stands in for them.
		mod := e.Modified
		if mod.IsZero() {
			mod = snapshot
		}
		if mod.After(meta.Modified) {
			meta.Modified = mod
		}
		for _, a := range e.Affected {
			m := modules[a.Module.Path]
			if m == nil {
				m = &moduleMeta{Path: a.Module.Path, Vulns: []moduleVuln{}}
				modules[a.Module.Path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: mod, Fixed: nonSupersededFix(a.Ranges)})
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), b, 0o644); err != nil {
			return 0, err
		}
	}
	list := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := writeJSON(filepath.Join(tmp, "index", "modules.json"), list); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(tmp, "index", "db.json"), meta); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, err
	}
	return len(files), nil
}

func writeJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// nonSupersededFix is the latest fixed version across the SEMVER ranges,
// or "" when the vulnerability was introduced again after it, as
// golang.org/x/vuln/internal/semver.NonSupersededFix computes it: the
// client skips an entry for a module version at or above this one without
// reading it, so it must never be later than the truth.
func nonSupersededFix(ranges []osvRange) string {
	latest := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && semverLess(latest, e.Fixed) {
				latest = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && semverLess(latest, e.Introduced) {
				latest = ""
				break
			}
		}
	}
	return latest
}

// semverLess compares OSV versions, which have no leading "v"; "" is
// less than any version.
func semverLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	return semver.Compare("v"+a, "v"+b) < 0
}

// The parts of govulncheck's JSON messages (golang.org/x/vuln's
// internal/govulncheck, protocol v1.0.0) the report uses.
type message struct {
	Config *struct {
		DB             string     `json:"db"`
		DBLastModified *time.Time `json:"db_last_modified"`
		GoVersion      string     `json:"go_version"`
		ScannerVersion string     `json:"scanner_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

type vuln struct {
	id, module, version, fixed string
	reachable                  bool
	via                        []string // vulnerable symbols reached
}

// report reads govulncheck -format json from r, writes the findings to w
// and says whether the policy above fails the scan.
func report(r io.Reader, w io.Writer) (failed bool, err error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	summaries := map[string]string{}
	vulns := map[string]*vuln{} // by ID + module
	var order []string
	goVersion := ""
	sawConfig := false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return false, fmt.Errorf("reading govulncheck's JSON output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			goVersion = m.Config.GoVersion
			mod := "unknown"
			if m.Config.DBLastModified != nil {
				mod = m.Config.DBLastModified.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "govulncheck %s, %s, database %s (snapshot of %s)\n", m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB, mod)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			top := f.Trace[0]
			key := f.OSV + " " + top.Module
			v := vulns[key]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion}
				vulns[key] = v
				order = append(order, key)
			}
			if top.Function != "" {
				v.reachable = true
				sym := top.Package + "." + top.Function
				if top.Receiver != "" {
					sym = top.Package + "." + strings.TrimPrefix(top.Receiver, "*") + "." + top.Function
				}
				if !contains(v.via, sym) {
					v.via = append(v.via, sym)
				}
			}
		}
	}
	if !sawConfig {
		return false, errors.New("no govulncheck output (did it fail to start?)")
	}
	sort.Strings(order)
	unreachable := 0
	for _, key := range order {
		v := vulns[key]
		if !v.reachable {
			unreachable++
			fix := "no fixed release yet"
			if v.fixed != "" {
				fix = "fixed in " + v.fixed
			}
			fmt.Fprintf(w, "not reached  %s %s %s: %s; %s\n", v.id, v.module, v.version, summaries[v.id], fix)
			continue
		}
		fix := "no fixed release yet"
		verdict := "listed (nothing to upgrade to)"
		if v.fixed != "" {
			fix = "fixed in " + v.fixed
			verdict = "FAIL"
			failed = true
		}
		if v.module == "stdlib" || v.module == "toolchain" {
			if v.fixed != "" {
				fix = "fixed in Go " + strings.TrimPrefix(v.fixed, "v") + " (this scan used " + goVersion + ": move go.mod's toolchain line)"
			}
		} else {
			// Any reachable vulnerability in a dependency fails, with or
			// without a fixed release: there is code to change or drop.
			verdict = "FAIL"
			failed = true
		}
		sort.Strings(v.via)
		via := v.via
		more := ""
		if len(via) > 3 {
			more = fmt.Sprintf(" and %d more", len(via)-3)
			via = via[:3]
		}
		fmt.Fprintf(w, "%s  %s %s %s: %s; %s\n    reached: %s%s\n", verdict, v.id, v.module, v.version, summaries[v.id], fix, strings.Join(via, ", "), more)
	}
	reachable := len(order) - unreachable
	fmt.Fprintf(w, "vulncheck: %d reachable, %d in required code but not reachable (not failed on)\n", reachable, unreachable)
	return failed, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
