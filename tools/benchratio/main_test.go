package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExact(t *testing.T) {
	re := exact("BenchmarkVerify/first-party/lpsec")
	if re != `^BenchmarkVerify$/^first-party$/^lpsec$` {
		t.Errorf("exact = %q", re)
	}
	// Each level must match only its own name: "Verify" must not select
	// BenchmarkVerifyModule.
	if regexp.MustCompile(strings.Split(exact("BenchmarkVerify/lpsec"), "/")[0]).MatchString("BenchmarkVerifyModule") {
		t.Error("exact pattern matches a longer name")
	}
}

func TestParse(t *testing.T) {
	out := "goos: linux\nBenchmarkHash/lpsec-2         \t  224341\t       413.7 ns/op\t      0 B/op\nBenchmarkHash/baseline-2 \t 100\t 1577 ns/op\nPASS\n"
	n, ns, ok := parse(out, "BenchmarkHash/lpsec")
	if !ok || n != 224341 || ns != 413.7 {
		t.Errorf("parse = %d, %v, %v", n, ns, ok)
	}
	if _, _, ok := parse(out, "BenchmarkHash"); ok {
		t.Error("parse found a result for a name that has none")
	}
}

func TestStatsAndTargets(t *testing.T) {
	p := &pair{pkg: "auth", name: "BenchmarkVerifyUnknownUser",
		lpsec:    []sample{{wallNs: 100, cpuNs: 10}, {wallNs: 900, cpuNs: 11}, {wallNs: 120, cpuNs: 12}},
		baseline: []sample{{wallNs: 100, cpuNs: 10}, {wallNs: 100, cpuNs: 10}, {wallNs: 600, cpuNs: 10}},
	}
	cpu := stats(p, func(s sample) float64 { return s.cpuNs })
	if cpu.lpsec != 11 || cpu.baseline != 10 || cpu.ratio != 1.1 || cpu.lo != 1 || cpu.hi != 1.2 {
		t.Errorf("cpu stats = %+v", cpu)
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "targets")
	os.WriteFile(name, []byte("# comment\nauth BenchmarkVerifyUnknownUser ratio 0.9 1.1  # why\nauth BenchmarkVerifyCacheHit time 2us\ntlsconfig BenchmarkHandshake ratio - 1.1\n"), 0o644)
	tg, err := readTargets(name)
	if err != nil || len(tg) != 3 {
		t.Fatalf("readTargets = %v, %v", tg, err)
	}
	if !tg[0].matches(p) || !tg[0].met(cpu) {
		t.Errorf("ratio 1.1 within 0.9-1.1: matches %v met %v", tg[0].matches(p), tg[0].met(cpu))
	}
	if tg[0].met(stat{ratio: 1.11}) || tg[0].met(stat{ratio: 0.89}) {
		t.Error("a ratio outside 0.9-1.1 met the target")
	}
	if !tg[1].met(stat{lpsec: float64(2 * time.Microsecond)}) || tg[1].met(stat{lpsec: float64(2*time.Microsecond + 1)}) {
		t.Error("time target 2us misjudged")
	}
	hs := &pair{pkg: "tlsconfig", name: "BenchmarkHandshake/Full"}
	if !tg[2].matches(hs) || tg[2].matches(&pair{pkg: "tlsconfig", name: "BenchmarkHandshakeX"}) {
		t.Error("prefix matching of sub-benchmarks wrong")
	}
	if tg[2].min != 0 || tg[2].max != 1.1 {
		t.Errorf("open lower bound parsed as %v-%v", tg[2].min, tg[2].max)
	}
	os.WriteFile(name, []byte("auth BenchmarkX ratio 1\n"), 0o644)
	if _, err := readTargets(name); err == nil {
		t.Error("malformed target line: no error")
	}
}
