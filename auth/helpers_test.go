package auth

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Low-cost hashes keep the tests fast under -race; NewBasic accepts them
// only with lowCost().
const testPassword = "correct horse:battery staple"

var (
	hashOnce     sync.Once
	bcrypt4      string // testPassword, cost 4, $2y$
	bcrypt5      string // testPassword, cost 5
	argonLow     string // testPassword, m=64,t=1,p=1
	bcrypt4Other string // "other", cost 4
)

func hashes(t testing.TB) {
	t.Helper()
	hashOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 4)
		bcrypt4 = "$2y$" + string(h[4:])
		h, _ = bcrypt.GenerateFromPassword([]byte(testPassword), 5)
		bcrypt5 = string(h)
		h, _ = bcrypt.GenerateFromPassword([]byte("other"), 4)
		bcrypt4Other = string(h)
		c := &credential{alg: algArgon2id, memory: 64, time: 1, threads: 1, salt: []byte("saltsaltsalt")}
		c.key = argon2.IDKey([]byte(testPassword), c.salt, 1, 64, 1, 32)
		argonLow = encodeArgon2id(c)
	})
}

func lowCost() Option { return WithMinimumCost(4, 64, 1) }

// fakeClock is the injected clock for TTL and limiter tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// workLog records every hash computation through the onHash seam.
type workLog struct {
	mu    sync.Mutex
	works []string
}

func (w *workLog) record(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.works = append(w.works, s)
}

func (w *workLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.works
	w.works = nil
	return out
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newLogger(l *logBuffer) *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// newTestBasic builds a Basic over spec with low costs, a fake clock and a
// work log.
func newTestBasic(t testing.TB, spec string, opts ...Option) (*Basic, *fakeClock, *workLog) {
	t.Helper()
	users, err := ParseUsers(spec)
	if err != nil {
		t.Fatalf("ParseUsers: %v", err)
	}
	clk := newFakeClock()
	b, err := NewBasic(users, append([]Option{lowCost(), WithClock(clk.now)}, opts...)...)
	if err != nil {
		t.Fatalf("NewBasic: %v", err)
	}
	w := &workLog{}
	b.onHash = w.record
	return b, clk, w
}
