// Command benchratio runs lpsec's paired benchmarks (BenchmarkX/lpsec beside
// BenchmarkX/baseline) and prints each ratio lpsec/baseline against its
// target, from CPU time per operation as well as wall time, as medians of
// several samples with their spread. bench/all.sh (make bench) runs it.
//
//	benchratio [-count 6] [-benchtime 200ms] [-targets FILE] [-out FILE] [-bench RE] PKGDIR...
//
// Why CPU time: on a shared machine a benchmark's wall time includes the
// time other processes held the cores, and ratios of wall times spread by
// several hundred per cent across runs; the CPU time the benchmark process
// itself used does not depend on who else runs. It is measured from outside
// (getrusage of the test binary: user + system time), so the benchmarks stay
// plain Go benchmarks:
//
//   - each sample runs the test binary for one sub-benchmark with a fixed
//     iteration count (-test.benchtime=Nx) and takes its CPU time;
//   - the CPU time of the same run with one iteration (-test.benchtime=1x,
//     the lowest of two runs) is subtracted: process start, set-up and the
//     first iteration, so what is left is N iterations' work;
//   - N is chosen so that the iterations take at least -benchtime and four
//     times the set-up's CPU time (up to 3 s), so the set-up's own noise
//     stays small beside them;
//   - lpsec and baseline of a pair use the same N and alternate, sample by
//     sample, so both see the same machine.
//
// The CPU time is the benchmark process's own: work another process does for
// it (a PostgreSQL server answering queries) shows only in the wall time.
//
// For each sample the wall ns/op that go test prints is kept too. Both go
// to -out in the benchmark format (units ns/op and cpu-ns/op), so
// `benchstat FILE` shows medians with confidence intervals; this program
// prints the ratio of medians and the spread of the per-sample ratios.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	count     = flag.Int("count", 6, "samples per benchmark")
	benchtime = flag.Duration("benchtime", 200*time.Millisecond, "minimum time of the iterations in one sample")
	targets   = flag.String("targets", "", "targets file (see bench/targets)")
	out       = flag.String("out", "", "write the samples in the benchmark format to this file")
	benchRE   = flag.String("bench", ".", "run only the top-level benchmarks matching this regexp")
)

func main() {
	flag.Parse()
	if flag.NArg() == 0 || *count < 1 {
		fmt.Fprintln(os.Stderr, "usage: benchratio [-count N] [-benchtime D] [-targets FILE] [-out FILE] [-bench RE] PKGDIR...")
		os.Exit(2)
	}
	tg, err := readTargets(*targets)
	if err != nil {
		fatal(err)
	}
	tmp, err := os.MkdirTemp("", "benchratio")
	if err != nil {
		fatal(err)
	}
	tmpDir = tmp
	defer os.RemoveAll(tmp)
	var results []*pair
	var raw strings.Builder
	for _, dir := range flag.Args() {
		rs, err := runPackage(dir, tmp, &raw)
		if err != nil {
			fatal(err)
		}
		results = append(results, rs...)
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(raw.String()), 0o644); err != nil {
			fatal(err)
		}
	}
	if !printRatios(results, tg) {
		os.RemoveAll(tmp)
		os.Exit(1)
	}
}

var tmpDir string

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchratio:", err)
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(2)
}

type sample struct {
	wallNs, cpuNs float64
}

type pair struct {
	pkg, name string // name without the /lpsec, /baseline leaf
	n         [2]int // iterations per sample: lpsec, baseline
	lpsec     []sample
	baseline  []sample
}

var resultLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([0-9.e+]+) ns/op`)

// runBin runs the test binary in dir and returns its output and the CPU
// time (user + system) it used.
func runBin(bin, dir string, args ...string) (string, time.Duration, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		return string(b), 0, fmt.Errorf("%s %s in %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), dir, err, b)
	}
	st := cmd.ProcessState
	return string(b), st.UserTime() + st.SystemTime(), nil
}

// exact is the -test.bench pattern that selects exactly the benchmark name.
func exact(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func parse(out, name string) (n int, ns float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := resultLine.FindStringSubmatch(sc.Text())
		if m != nil && m[1] == name {
			n, _ = strconv.Atoi(m[2])
			ns, _ = strconv.ParseFloat(m[3], 64)
			return n, ns, true
		}
	}
	return 0, 0, false
}

func runPackage(dir, tmp string, raw *strings.Builder) ([]*pair, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	pkg := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(dir)), "./")
	bin := filepath.Join(tmp, strings.ReplaceAll(pkg, "/", "_")+".test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./"+pkg)
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test -c %s: %v\n%s", pkg, err, b)
	}
	// Discover the pairs: one iteration of every benchmark.
	disc, _, err := runBin(bin, abs, "-test.run=^$", "-test.bench="+*benchRE, "-test.benchtime=1x")
	if err != nil {
		return nil, err
	}
	var pairs []*pair
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(disc))
	for sc.Scan() {
		m := resultLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		base, leaf, ok := strings.Cut(reverse(m[1]), "/")
		if !ok {
			continue
		}
		base, leaf = reverse(leaf), reverse(base)
		if (leaf == "lpsec" || leaf == "baseline") && !seen[base] {
			seen[base] = true
			pairs = append(pairs, &pair{pkg: pkg, name: base})
		}
	}
	for _, p := range pairs {
		if err := measure(p, bin, abs, raw); err != nil {
			return nil, err
		}
	}
	return pairs, nil
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func measure(p *pair, bin, dir string, raw *strings.Builder) error {
	names := []string{p.name + "/lpsec", p.name + "/baseline"}
	var setup [2]time.Duration
	var opNs [2]float64
	for i, name := range names {
		setup[i] = time.Duration(math.MaxInt64)
		for range 2 {
			_, cpu, err := runBin(bin, dir, "-test.run=^$", "-test.bench="+exact(name), "-test.benchtime=1x")
			if err != nil {
				return err
			}
			setup[i] = min(setup[i], cpu)
		}
		out, cpu, err := runBin(bin, dir, "-test.run=^$", "-test.bench="+exact(name), "-test.benchtime="+benchtime.String())
		if err != nil {
			return err
		}
		n, ns, ok := parse(out, name)
		if !ok {
			return fmt.Errorf("%s %s: no result in\n%s", p.pkg, name, out)
		}
		// The CPU time of one operation, estimated from this run: on a
		// loaded machine the wall time per operation can be many times
		// that, and sizing N from it would leave too little work.
		opNs[i] = max(ns, 1)
		if c := float64(cpu-setup[i]) / float64(n); n > 0 && c > 0 {
			opNs[i] = c
		}
	}
	// Enough iterations that they outweigh the set-up's noise: at least
	// -benchtime and four times the set-up (up to 3 s) of CPU time. Variants
	// within a factor of 2 of each other share one N, so that any
	// per-run constant left after subtracting the set-up cancels out of
	// their ratio; far-apart ones (a cache hit beside bcrypt) each get
	// their own.
	work := max(float64(*benchtime), min(4*float64(max(setup[0], setup[1])), float64(3*time.Second)))
	p.n[0] = max(10, int(math.Ceil(work/opNs[0])))
	p.n[1] = max(10, int(math.Ceil(work/opNs[1])))
	if max(opNs[0], opNs[1]) <= 2*min(opNs[0], opNs[1]) {
		p.n[0] = min(p.n[0], p.n[1])
		p.n[1] = p.n[0]
	}
	fmt.Fprintf(os.Stderr, "benchratio: %s %s: %d samples of %d (lpsec) and %d (baseline) iterations\n", p.pkg, p.name, *count, p.n[0], p.n[1])
	for s := range *count {
		order := []int{0, 1}
		if s%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			out, cpu, err := runBin(bin, dir, "-test.run=^$", "-test.bench="+exact(names[i]), fmt.Sprintf("-test.benchtime=%dx", p.n[i]))
			if err != nil {
				return err
			}
			_, ns, ok := parse(out, names[i])
			if !ok {
				return fmt.Errorf("%s %s: no result in\n%s", p.pkg, names[i], out)
			}
			c := max(0, float64(cpu-setup[i])) / float64(p.n[i])
			smp := sample{wallNs: ns, cpuNs: c}
			if i == 0 {
				p.lpsec = append(p.lpsec, smp)
			} else {
				p.baseline = append(p.baseline, smp)
			}
			fmt.Fprintf(raw, "pkg: github.com/lpsec/lpsec/%s\n%s\t%d\t%.1f ns/op\t%.1f cpu-ns/op\n", p.pkg, names[i], p.n[i], ns, c)
		}
	}
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type stat struct {
	lpsec, baseline, ratio, lo, hi, spread float64 // spread: lpsec's (max-min)/median
}

func stats(p *pair, get func(sample) float64) stat {
	var l, b, r []float64
	for i := range p.lpsec {
		l = append(l, get(p.lpsec[i]))
		b = append(b, get(p.baseline[i]))
		if get(p.baseline[i]) > 0 {
			r = append(r, get(p.lpsec[i])/get(p.baseline[i]))
		}
	}
	st := stat{lpsec: median(l), baseline: median(b)}
	if st.baseline > 0 {
		st.ratio = st.lpsec / st.baseline
	}
	sort.Float64s(r)
	if len(r) > 0 {
		st.lo, st.hi = r[0], r[len(r)-1]
	}
	sort.Float64s(l)
	if st.lpsec > 0 {
		st.spread = (l[len(l)-1] - l[0]) / st.lpsec
	}
	return st
}

// A target: on the CPU ratio (min/max, 0 = none) or on lpsec's CPU time
// per operation (max).
type target struct {
	pkg, prefix string
	kind        string // "ratio" or "time"
	min, max    float64
	why         string
}

func (t target) String() string {
	if t.kind == "time" {
		return "lpsec <= " + time.Duration(t.max).String()
	}
	switch {
	case t.min > 0 && t.max > 0:
		return fmt.Sprintf("ratio %.2f-%.2f", t.min, t.max)
	case t.min > 0:
		return fmt.Sprintf("ratio >= %.2f", t.min)
	default:
		return fmt.Sprintf("ratio <= %.2f", t.max)
	}
}

// readTargets reads lines "PKG BENCHMARK-PREFIX ratio MIN MAX  # why" or
// "PKG BENCHMARK-PREFIX time MAX  # why", "-" for no bound.
func readTargets(name string) ([]target, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var list []target
	for i, line := range strings.Split(string(b), "\n") {
		spec, why, _ := strings.Cut(line, "#")
		f := strings.Fields(spec)
		if len(f) == 0 {
			continue
		}
		bad := fmt.Errorf("%s:%d: want \"PKG BENCHMARK ratio MIN MAX\" or \"PKG BENCHMARK time MAX\"", name, i+1)
		t := target{pkg: f[0], prefix: f[1], why: strings.TrimSpace(why)}
		switch {
		case len(f) == 5 && f[2] == "ratio":
			t.kind = "ratio"
			for j, s := range f[3:] {
				if s == "-" {
					continue
				}
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, bad
				}
				if j == 0 {
					t.min = v
				} else {
					t.max = v
				}
			}
		case len(f) == 4 && f[2] == "time":
			t.kind = "time"
			d, err := time.ParseDuration(f[3])
			if err != nil {
				return nil, bad
			}
			t.max = float64(d)
		default:
			return nil, bad
		}
		list = append(list, t)
	}
	return list, nil
}

func (t target) matches(p *pair) bool {
	return t.pkg == p.pkg && (p.name == t.prefix || strings.HasPrefix(p.name, t.prefix+"/"))
}

func (t target) met(cpu stat) bool {
	if t.kind == "time" {
		return cpu.lpsec <= t.max
	}
	return (t.min == 0 || cpu.ratio >= t.min) && (t.max == 0 || cpu.ratio <= t.max)
}

func printRatios(pairs []*pair, targets []target) bool {
	ok := true
	w := os.Stdout
	fmt.Fprintf(w, "\n%-46s %12s %12s %7s %-13s %12s %12s %7s %-13s %s\n",
		"benchmark (medians of samples)", "cpu lpsec", "cpu base", "ratio", "(spread)", "wall lpsec", "wall base", "ratio", "(spread)", "target (on CPU): verdict")
	for _, p := range pairs {
		cpu := stats(p, func(s sample) float64 { return s.cpuNs })
		wall := stats(p, func(s sample) float64 { return s.wallNs })
		verdict := "(no target)"
		for _, t := range targets {
			if t.matches(p) {
				if t.met(cpu) {
					verdict = t.String() + ": met"
				} else {
					verdict = t.String() + ": NOT MET"
					ok = false
				}
				break
			}
		}
		fmt.Fprintf(w, "%-46s %12s %12s %7.3f %-13s %12s %12s %7.3f %-13s %s\n",
			p.pkg+" "+strings.TrimPrefix(p.name, "Benchmark"),
			ns(cpu.lpsec), ns(cpu.baseline), cpu.ratio, fmt.Sprintf("(%.2f-%.2f)", cpu.lo, cpu.hi),
			ns(wall.lpsec), ns(wall.baseline), wall.ratio, fmt.Sprintf("(%.2f-%.2f)", wall.lo, wall.hi), verdict)
	}
	fmt.Fprintln(w, "ratio = lpsec/baseline of the medians; (spread) = lowest-highest ratio of the samples taken side by side")
	return ok
}

func ns(v float64) string {
	return time.Duration(v).Round(time.Duration(math.Pow(10, math.Max(0, math.Floor(math.Log10(math.Max(v, 1)))-2)))).String()
}
