// Package pgtest gives tests a private PostgreSQL database.
//
// Two ways in:
//
//   - [Database] creates a fresh database on the server named by
//     LPSEC_TEST_DATABASE_URL (set by scripts/with-postgres.sh and so by
//     `make test`) and drops it when the test ends, so packages and tests can
//     run in parallel. Without the variable the test is skipped with a message
//     saying how to enable it.
//   - [StartCluster] starts a throwaway cluster of the test's own, for tests
//     that must stop and restart the server (fail-closed behaviour).
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// EnvURL is the variable naming the test server.
const EnvURL = "LPSEC_TEST_DATABASE_URL"

// SkipMessage says how to enable PostgreSQL-backed tests.
const SkipMessage = "PostgreSQL tests skipped: set " + EnvURL + " or run them through scripts/with-postgres.sh (make test does)"

// Database creates an empty database for this test and returns its URL.
// It is dropped in t.Cleanup.
func Database(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skip(SkipMessage)
	}
	return createDatabase(t, base)
}

// Open is Database followed by sql.Open with the pgx driver; the handle is
// closed in t.Cleanup before the database is dropped.
func Open(t testing.TB) *sql.DB {
	t.Helper()
	u := Database(t)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func createDatabase(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", EnvURL, err)
	}
	defer admin.Close()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "lpsec_test_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Cluster is a throwaway PostgreSQL cluster owned by one test.
type Cluster struct {
	t      testing.TB
	bin    string
	dir    string
	port   int
	asUser []string
	// URL connects to the cluster's "postgres" database.
	URL string
}

func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb not found (install the Debian postgresql package)")
}

// StartCluster starts a cluster in a temp dir on 127.0.0.1 and stops and
// removes it in t.Cleanup. As root it runs as the postgres user. The test is
// skipped when no PostgreSQL binaries are installed, unless CI is set, where
// that is a failure.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("PostgreSQL cluster tests skipped: %v", err)
	}
	c := &Cluster{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "lpsec-pgc-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("PostgreSQL cluster tests skipped: running as root and no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.Start()
	t.Cleanup(func() {
		cmd := c.cmd("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		_ = cmd.Run()
	})
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) cmd(tool string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, c.asUser...), filepath.Join(c.bin, tool))
	argv = append(argv, args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (c *Cluster) run(tool string, args ...string) {
	c.t.Helper()
	out, err := c.cmd(tool, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("pgtest: %s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// Start starts (or restarts) the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off", c.port, c.dir),
		"start")
}

// Durable makes commits on this cluster durable against Crash: it turns
// synchronous_commit back on for every new session of the postgres role
// (the cluster runs with it off for speed). Call it before the code under
// test connects.
func (c *Cluster) Durable() {
	c.t.Helper()
	db, err := sql.Open("pgx", c.URL)
	if err != nil {
		c.t.Fatalf("pgtest: durable: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "ALTER ROLE postgres SET synchronous_commit = on"); err != nil {
		c.t.Fatalf("pgtest: durable: %v", err)
	}
}

// Crash stops the server as a power cut would look to it: `pg_ctl stop -m
// immediate` kills every process without a checkpoint, and Start then
// runs crash recovery. Only commits made under Durable are sure to survive.
func (c *Cluster) Crash() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
}

// Stop stops the server, terminating open connections at once. It is a
// fast shutdown, not an immediate one: the cluster runs with
// synchronous_commit=off for speed, and an immediate stop could lose the
// last committed transactions, which a test that checks state after Start
// would mistake for a bug in the code under test.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
}

// postmasterPID reads the server's process id from postmaster.pid.
func (c *Cluster) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid: bad pid %q", first)
	}
	return pid, nil
}

// children lists the processes whose parent is pid (from /proc).
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may contain spaces; the
		// parent pid is the second field after the closing one.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b)[i+1:])
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, p)
			}
		}
	}
	return out
}

// Freeze stops the server and every backend with SIGSTOP, as a network
// partition or a hung host would look to clients: connections stay open
// and new ones are accepted by the kernel, but nothing answers. The
// postmaster is stopped first, so it forks no backend that would escape.
// Thaw (or the test's cleanup) resumes it. Linux only (/proc).
func (c *Cluster) Freeze() {
	c.t.Helper()
	pm, err := c.postmasterPID()
	if err != nil {
		c.t.Fatalf("pgtest: freeze: %v", err)
	}
	c.signal(pm, syscall.SIGSTOP)
	for _, p := range children(pm) {
		c.signal(p, syscall.SIGSTOP)
	}
	c.t.Cleanup(c.Thaw) // a frozen cluster would block its own stop
}

// Thaw resumes a server stopped by Freeze: backends first, then the
// postmaster. Thawing a running server does nothing.
func (c *Cluster) Thaw() {
	pm, err := c.postmasterPID()
	if err != nil {
		return // not running
	}
	for _, p := range children(pm) {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
	_ = syscall.Kill(pm, syscall.SIGCONT)
}

func (c *Cluster) signal(pid int, sig syscall.Signal) {
	c.t.Helper()
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		c.t.Fatalf("pgtest: kill %d %v: %v", pid, sig, err)
	}
}

// Bounded runs call with a context that has no deadline of its own, so
// that only the code under test can end it (a store timeout, with the
// cluster frozen), and fails t if it has not returned within
// bound+margin; a call still waiting then is left to the cluster's thaw in
// cleanup. It returns the call's error and duration.
func Bounded(t testing.TB, what string, bound, margin time.Duration, call func(context.Context) error) (time.Duration, error) {
	t.Helper()
	type result struct {
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		err := call(context.Background())
		done <- result{err, time.Since(start)}
	}()
	select {
	case r := <-done:
		if r.d > bound+margin {
			t.Errorf("%s took %v with the database frozen; bound %v + margin %v", what, r.d, bound, margin)
		}
		return r.d, r.err
	case <-time.After(bound + margin):
		t.Fatalf("%s still waiting after %v with the database frozen: the store timeout did not interrupt it", what, bound+margin)
		return 0, nil
	}
}
