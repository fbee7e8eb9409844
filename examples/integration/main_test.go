package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/client"
)

// bin holds the example binaries, built once per test binary (on first
// use, so `go test -list` stays cheap) and without -race: the race
// detector would only slow the processes down; the test code itself runs
// under -race.
var (
	bin       string
	buildOnce sync.Once
	buildErr  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bin != "" {
		os.RemoveAll(bin)
	}
	os.Exit(code)
}

func build() {
	dir, err := os.MkdirTemp("", "lpsec-examples-bin-")
	if err != nil {
		buildErr = err.Error()
		return
	}
	bin = dir
	// -tags lpsec_faults compiles in the server's fault-injection point
	// (examples/internal/server/faults_on.go), inert unless a test sets
	// LPSEC_FAULT_AFTER_REGISTER.
	cmd := exec.Command("go", "build", "-tags", "lpsec_faults", "-o", dir+string(os.PathSeparator),
		"./examples/server", "./examples/client", "./examples/contracts", "./examples/patchtool", "./examples/admin",
		"./examples/identity")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Sprintf("building the example binaries: %v\n%s", err, out)
	}
}

// exe returns the path of a built binary, building them all the first time.
func exe(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(build)
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return filepath.Join(bin, name)
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a binary to completion.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe(t, name), args...)
	cmd.Env = append(cleanEnv(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return result{so.String(), se.String(), code}
}

// mustRun runs a binary that must succeed.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	r := run(t, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cleanEnv drops LPSEC_* variables of the caller, so only the test's own
// settings reach the binaries.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LPSEC_") {
			out = append(out, kv)
		}
	}
	return out
}

// syncBuffer collects a process's stderr for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a server or contracts process.
type daemon struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	lines  []string
	URL    string
	done   chan struct{}
}

var listenRe = regexp.MustCompile(`listening on (https://\S+)`)

// start runs a long-lived binary and waits for its "listening on" line,
// which the binaries print last: the lines before it (CA file, public key)
// are then all in d.lines, with no timing guess. It is stopped with SIGTERM
// at the end of the test.
func start(t *testing.T, env []string, name string, args ...string) *daemon {
	t.Helper()
	return startCmd(t, env, name, exec.Command(exe(t, name), args...))
}

// startCmd is start for a command that runs the binary (prlimit ... --
// server, for one).
func startCmd(t *testing.T, env []string, name string, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	d.cmd.Env = append(cleanEnv(), env...)
	d.cmd.Stderr = d.stderr
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })
	timeout := time.After(60 * time.Second)
	for d.URL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				<-d.done
				t.Fatalf("%s exited before listening (%v)\nstderr:\n%s", name, d.cmd.ProcessState, d.stderr)
			}
			d.lines = append(d.lines, l)
			if m := listenRe.FindStringSubmatch(l); m != nil {
				d.URL = m[1]
			}
		case <-timeout:
			t.Fatalf("%s did not start listening\nstderr:\n%s", name, d.stderr)
		}
	}
	// Keep the pipe drained so that the process never blocks on stdout.
	go func() {
		for range lines {
		}
	}()
	return d
}

// line returns the value after prefix in the start-up output.
func (d *daemon) line(t *testing.T, re string) string {
	t.Helper()
	r := regexp.MustCompile(re)
	for _, l := range d.lines {
		if m := r.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no start-up line matches %q in %q", re, d.lines)
	return ""
}

func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("process did not stop on SIGTERM\nstderr:\n%s", d.stderr)
	}
	if t.Failed() {
		t.Logf("stderr of %s:\n%s", d.cmd.Path, d.stderr)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// bundle concatenates CA files into one for --ca-certs.
func bundle(t *testing.T, dir string, files ...string) string {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	p := filepath.Join(dir, "ca-bundle.pem")
	if err := os.WriteFile(p, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func asServerError(err error, target **client.ServerError) bool {
	return errors.As(err, target)
}
