package macaroon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// rkClock is a settable clock for root-key tests: no test sleeps.
type rkClock struct {
	mu  sync.Mutex
	now time.Time
}

func newRKClock() *rkClock { return &rkClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *rkClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *rkClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func rkPolicy(c *rkClock) []Option {
	return []Option{WithRotationPeriod(24 * time.Hour), WithMaxTTL(240 * time.Hour), WithClock(c.Now)}
}

func mustRootKey(t testing.TB, s RootKeyStore) (key, id []byte) {
	t.Helper()
	key, id, err := s.RootKey(context.Background())
	if err != nil {
		t.Fatalf("RootKey: %v", err)
	}
	return key, id
}

func TestRootKeyMemoryPurgeBoundsKeyCount(t *testing.T) {
	clk := newRKClock()
	s, err := NewMemoryRootKeyStore(rkPolicy(clk)...)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		mustRootKey(t, s)
		clk.Advance(24 * time.Hour)
	}
	s.mu.Lock()
	n := len(s.keys)
	s.mu.Unlock()
	// Keys live RotationPeriod+MaxTTL = 11 periods.
	if n > 11 {
		t.Fatalf("%d keys kept after 100 rotations; want at most 11", n)
	}
}

func TestRootKeyOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		msg  string
	}{
		{"negative_rotation", WithRotationPeriod(-time.Hour), "WithRotationPeriod: period -1h0m0s is shorter than one second"},
		{"negative_max_ttl", WithMaxTTL(-time.Hour), "WithMaxTTL: duration -1h0m0s is not positive"},
		{"rotation_below_one_second_grows_key_set", WithRotationPeriod(time.Millisecond), "shorter than one second"},
		{"cache_ttl_memory", WithCacheTTL(time.Second), "WithCacheTTL does not apply to NewMemoryRootKeyStore"},
		{"no_cache_memory", WithoutRootKeyCache(), "WithoutRootKeyCache does not apply to NewMemoryRootKeyStore"},
		{"default_ttl_memory", WithDefaultTTL(time.Hour), "WithDefaultTTL does not apply to NewMemoryRootKeyStore"},
		{"nil_logger", WithLogger(nil), "WithLogger: nil logger"},
		{"nil_clock", WithClock(nil), "WithClock: nil clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMemoryRootKeyStore(tc.opt)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v; want ErrInvalidOption saying %q", err, tc.msg)
			}
		})
	}
}

func TestRootKeyDefaults(t *testing.T) {
	if DefaultRootKeyRotationPeriod != 24*time.Hour || DefaultMaxTTL != 240*time.Hour || DefaultRootKeyCacheTTL != 30*time.Second {
		t.Fatalf("defaults = %v, %v, %v; want 24h, 240h, 30s", DefaultRootKeyRotationPeriod, DefaultMaxTTL, DefaultRootKeyCacheTTL)
	}
}

// TestRootKeyEventsNeverLogKeys checks the security events and that no key
// material reaches the log.
func TestRootKeyEventsNeverLogKeys(t *testing.T) {
	var buf bytes.Buffer
	clk := newRKClock()
	s, err := NewMemoryRootKeyStore(append(rkPolicy(clk), WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	key1, id1 := mustRootKey(t, s)
	clk.Advance(300 * time.Hour)
	key2, _ := mustRootKey(t, s)
	if err := s.Revoke(context.Background(), id1); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, ev := range []string{"macaroon_root_key_rotated", "macaroon_root_key_purged", "macaroon_root_key_revoked"} {
		if !strings.Contains(out, `"event":"`+ev+`"`) {
			t.Errorf("no %s event in log:\n%s", ev, out)
		}
	}
	for _, k := range [][]byte{key1, key2} {
		for _, enc := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), string(k)} {
			if strings.Contains(out, enc) {
				t.Fatal("root key material in the log")
			}
		}
	}
}

// FuzzRootKeyGet feeds arbitrary ids to Get: never a panic, never a key for
// anything but the real id.
func FuzzRootKeyGet(f *testing.F) {
	s, err := NewMemoryRootKeyStore()
	if err != nil {
		f.Fatal(err)
	}
	_, id, err := s.RootKey(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte("0"))
	f.Add(bytes.Repeat([]byte{0}, core.RootKeyIDLen))
	f.Add(id)
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := s.Get(context.Background(), b)
		if bytes.Equal(b, id) {
			if err != nil || len(key) != core.RootKeyLen {
				t.Fatalf("real id: %v", err)
			}
		} else if err != bakery.ErrNotFound || key != nil {
			t.Fatalf("Get(%x) = %x, %v; want bakery.ErrNotFound", b, key, err)
		}
	})
}

func BenchmarkRootKeyGet(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, s bakery.RootKeyStore) {
		_, id, err := s.RootKey(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("lpsec", func(b *testing.B) {
		s, err := NewMemoryRootKeyStore()
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})
	// The bakery's own memory store: one key, never rotated.
	b.Run("baseline", func(b *testing.B) { run(b, bakery.NewMemRootKeyStore()) })
}

// TestDefaultsMatchCore: the documented defaults are the ones applied.
func TestDefaultsMatchCore(t *testing.T) {
	for _, c := range []struct {
		name        string
		doc, actual time.Duration
	}{
		{"DefaultTTL", DefaultTTL, core.DefaultTTL},
		{"DefaultMaxTTL", DefaultMaxTTL, core.DefaultMaxTTL},
		{"DefaultDischargeTTL", DefaultDischargeTTL, core.DefaultDischargeTTL},
		{"DefaultRootKeyRotationPeriod", DefaultRootKeyRotationPeriod, core.DefaultRotationPeriod},
		{"DefaultRootKeyCacheTTL", DefaultRootKeyCacheTTL, core.DefaultCacheTTL},
		{"DefaultRevocationCacheTTL", DefaultRevocationCacheTTL, core.DefaultRevocationTTL},
		{"DefaultStoreTimeout", DefaultStoreTimeout, core.DefaultStoreTimeout},
	} {
		if c.doc != c.actual {
			t.Errorf("%s = %v, but %v is applied", c.name, c.doc, c.actual)
		}
	}
}
