package macaroon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/internal/testenv"
)

// rkClock is a settable clock for root-key tests: no test sleeps.
type rkClock struct {
	mu  sync.Mutex
	now time.Time
}

func newRKClock() *rkClock {
	return &rkClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

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

// rkTestPolicy is short enough to read, long enough to be realistic.
func rkTestPolicy(c *rkClock) RootKeyPolicy {
	return RootKeyPolicy{RotationPeriod: 24 * time.Hour, MaxTTL: 240 * time.Hour, CacheTTL: 30 * time.Second, Now: c.Now}
}

// rootKeyStoreFactory makes a fresh, empty store for one subtest.
type rootKeyStoreFactory func(t *testing.T, p RootKeyPolicy) RootKeyStore

// runRootKeyStoreConformance is the behaviour every RootKeyStore must have.
func runRootKeyStoreConformance(t *testing.T, newStore rootKeyStoreFactory) {
	ctx := context.Background()

	t.Run("MintThenGet", func(t *testing.T) {
		clk := newRKClock()
		s := newStore(t, rkTestPolicy(clk))
		key, id := mustRootKey(t, s)
		if len(key) != rootKeyLen || len(id) != rootKeyIDLen {
			t.Fatalf("key %d bytes, id %d bytes; want %d, %d", len(key), len(id), rootKeyLen, rootKeyIDLen)
		}
		if bytes.Contains(key, id) || bytes.Contains(id, key[:8]) {
			t.Fatal("id and key share bytes")
		}
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Get = %x, %v; want the minted key", got, err)
		}
		key2, id2 := mustRootKey(t, s)
		if !bytes.Equal(id2, id) || !bytes.Equal(key2, key) {
			t.Fatal("RootKey changed key within the rotation period")
		}
	})

	t.Run("RotatesAfterPeriodAndKeepsOldKey", func(t *testing.T) {
		clk := newRKClock()
		s := newStore(t, rkTestPolicy(clk))
		key1, id1 := mustRootKey(t, s)
		clk.Advance(24*time.Hour - time.Second)
		if _, id := mustRootKey(t, s); !bytes.Equal(id, id1) {
			t.Fatal("rotated before the period ended")
		}
		clk.Advance(time.Second)
		key2, id2 := mustRootKey(t, s)
		if bytes.Equal(id2, id1) || bytes.Equal(key2, key1) {
			t.Fatal("did not rotate after RotationPeriod")
		}
		if got, err := s.Get(ctx, id1); err != nil || !bytes.Equal(got, key1) {
			t.Fatalf("old key after rotation: Get = %v; want it kept for verification", err)
		}
	})

	t.Run("ExpiresMaxTTLAfterLastMint", func(t *testing.T) {
		clk := newRKClock()
		s := newStore(t, rkTestPolicy(clk))
		key1, id1 := mustRootKey(t, s)
		// A macaroon minted at the last instant of the rotation period with
		// the full MaxTTL must still verify until it expires.
		clk.Advance(24*time.Hour + 240*time.Hour - time.Second)
		if got, err := s.Get(ctx, id1); err != nil || !bytes.Equal(got, key1) {
			t.Fatalf("key dropped before created+RotationPeriod+MaxTTL: %v", err)
		}
		clk.Advance(time.Second)
		if _, err := s.Get(ctx, id1); err != bakery.ErrNotFound {
			t.Fatalf("expired key: Get err = %v; want bakery.ErrNotFound itself", err)
		}
		// Minting now purges it and uses a new key.
		if _, id := mustRootKey(t, s); bytes.Equal(id, id1) {
			t.Fatal("minted with an expired key")
		}
		if _, err := s.Get(ctx, id1); err != bakery.ErrNotFound {
			t.Fatalf("purged key: Get err = %v; want bakery.ErrNotFound", err)
		}
	})

	t.Run("RevokeCurrentKey", func(t *testing.T) {
		clk := newRKClock()
		s := newStore(t, rkTestPolicy(clk))
		_, id := mustRootKey(t, s)
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, id); err != bakery.ErrNotFound {
			t.Fatalf("revoked key: Get err = %v; want bakery.ErrNotFound", err)
		}
		if _, id2 := mustRootKey(t, s); bytes.Equal(id2, id) {
			t.Fatal("RootKey returned a revoked key")
		}
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatalf("revoking twice: %v; want idempotent success", err)
		}
	})

	t.Run("RevokeOldKeyKeepsCurrent", func(t *testing.T) {
		clk := newRKClock()
		s := newStore(t, rkTestPolicy(clk))
		_, old := mustRootKey(t, s)
		clk.Advance(25 * time.Hour)
		key, cur := mustRootKey(t, s)
		if err := s.Revoke(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, old); err != bakery.ErrNotFound {
			t.Fatalf("revoked key: %v", err)
		}
		if got, err := s.Get(ctx, cur); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("current key after revoking another: %v", err)
		}
	})

	t.Run("RevokeMalformedID", func(t *testing.T) {
		s := newStore(t, rkTestPolicy(newRKClock()))
		for _, id := range [][]byte{nil, {}, []byte("0"), make([]byte, 17)} {
			if err := s.Revoke(ctx, id); !errors.Is(err, bakery.ErrNotFound) {
				t.Errorf("Revoke(%d bytes) = %v; want bakery.ErrNotFound", len(id), err)
			}
		}
	})

	t.Run("ReturnedSlicesAreCopies", func(t *testing.T) {
		s := newStore(t, rkTestPolicy(newRKClock()))
		key, id := mustRootKey(t, s)
		want := bytes.Clone(key)
		clear(key)
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		clear(got)
		got, _ = s.Get(ctx, id)
		if !bytes.Equal(got, want) {
			t.Fatal("mutating a returned key changed the stored key")
		}
	})

	t.Run("HostileGetIDs", func(t *testing.T) {
		s := newStore(t, rkTestPolicy(newRKClock()))
		key, id := mustRootKey(t, s)
		flipped := bytes.Clone(id)
		flipped[0] ^= 1
		random := make([]byte, rootKeyIDLen)
		_, _ = rand.Read(random)
		for _, tc := range []struct {
			name string
			id   []byte
		}{
			{"nil", nil},
			{"empty", []byte{}},
			{"bakery_memstore_id_0", []byte("0")},
			{"one_byte_short", id[:rootKeyIDLen-1]},
			{"one_byte_long", append(bytes.Clone(id), 0)},
			{"huge_1MiB", bytes.Repeat(id, 1<<16)},
			{"random_16_bytes", random},
			{"all_zero", make([]byte, rootKeyIDLen)},
			{"bit_flipped_real_id", flipped},
			{"hex_of_real_id", []byte(hex.EncodeToString(id))},
			{"key_bytes_as_id", key[:rootKeyIDLen]},
			{"sql_injection", []byte("' OR 1=1; --    ")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Get(ctx, tc.id)
				if err != bakery.ErrNotFound || got != nil {
					t.Fatalf("Get = %x, %v; want nil, bakery.ErrNotFound itself", got, err)
				}
			})
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, rkTestPolicy(newRKClock()))
		var wg sync.WaitGroup
		ids := make(chan string, 64)
		for range 8 {
			wg.Go(func() {
				for range 8 {
					key, id, err := s.RootKey(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, key) {
						t.Errorf("Get after RootKey: %v", err)
					}
					ids <- string(id)
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("concurrent minting used %d keys; want 1", len(seen))
		}
	})

	t.Run("BakeryMintAndVerify", func(t *testing.T) {
		s := newStore(t, rkTestPolicy(newRKClock()))
		b := bakery.New(bakery.BakeryParams{RootKeyStore: s, Location: "lpsec-test"})
		op := bakery.Op{Entity: "patches", Action: "read"}
		m, err := b.Oven.NewMacaroon(ctx, bakery.LatestVersion,
			[]checkers.Caveat{checkers.TimeBeforeCaveat(time.Now().Add(time.Hour))}, op)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err != nil {
			t.Fatalf("freshly minted macaroon rejected: %v", err)
		}
		// Revocation through the store invalidates the macaroon.
		_, id := mustRootKey(t, s)
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Checker.Auth(macaroon.Slice{m.M()}).Allow(ctx, op); err == nil {
			t.Fatal("macaroon of a revoked root key accepted")
		}
	})
}

func mustRootKey(t testing.TB, s RootKeyStore) (key, id []byte) {
	t.Helper()
	key, id, err := s.RootKey(context.Background())
	if err != nil {
		t.Fatalf("RootKey: %v", err)
	}
	return key, id
}

func TestRootKeyMemoryConformance(t *testing.T) {
	runRootKeyStoreConformance(t, func(t *testing.T, p RootKeyPolicy) RootKeyStore {
		s, err := NewMemoryRootKeyStore(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRootKeyMemoryPurgeBoundsKeyCount(t *testing.T) {
	clk := newRKClock()
	s, err := NewMemoryRootKeyStore(rkTestPolicy(clk))
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

func TestRootKeyPolicyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    RootKeyPolicy
	}{
		{"negative_rotation", RootKeyPolicy{RotationPeriod: -time.Hour}},
		{"negative_max_ttl", RootKeyPolicy{MaxTTL: -time.Hour}},
		{"rotation_below_one_second_grows_key_set", RootKeyPolicy{RotationPeriod: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewMemoryRootKeyStore(tc.p); !errors.Is(err, ErrInvalidRootKeyPolicy) {
				t.Fatalf("err = %v; want ErrInvalidRootKeyPolicy", err)
			}
		})
	}
}

func TestRootKeyPolicyDefaults(t *testing.T) {
	p, err := RootKeyPolicy{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if p.RotationPeriod != 24*time.Hour || p.MaxTTL != 240*time.Hour || p.CacheTTL != 30*time.Second {
		t.Fatalf("defaults = %v, %v, %v; want 24h, 240h, 30s", p.RotationPeriod, p.MaxTTL, p.CacheTTL)
	}
}

// TestRootKeyEventsNeverLogKeys checks the security events and that no key
// material reaches the log.
func TestRootKeyEventsNeverLogKeys(t *testing.T) {
	var buf bytes.Buffer
	clk := newRKClock()
	p := rkTestPolicy(clk)
	p.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	s, err := NewMemoryRootKeyStore(p)
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

func testKEK(t testing.TB) *KeyEncryptionKey {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyEncryptionKeyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"aes128_16_bytes", make([]byte, 16)},
		{"aes192_24_bytes", make([]byte, 24)},
		{"31_bytes", make([]byte, 31)},
		{"33_bytes", make([]byte, 33)},
		{"huge", make([]byte, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeyEncryptionKey(tc.raw); !errors.Is(err, ErrInvalidKeyEncryptionKey) {
				t.Fatalf("err = %v; want ErrInvalidKeyEncryptionKey", err)
			}
		})
	}
}

func TestParseKeyEncryptionKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // exercises +/ vs -_
	want, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := ParseKeyEncryptionKey(s)
		if err != nil || k.ID() != want.ID() {
			t.Errorf("ParseKeyEncryptionKey(%q) = %v, %v; want key %s", s, k, err, want.ID())
		}
	}
	secret := base64.StdEncoding.EncodeToString(raw)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"hex_64_chars", hex.EncodeToString(raw)},
		{"base64_of_16_bytes", base64.StdEncoding.EncodeToString(raw[:16])},
		{"base64_of_33_bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1))},
		{"invalid_character", "!" + secret[1:]},
		{"mixed_alphabets", "+" + secret[1:42] + "_="},
		{"pem_block", "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyEncryptionKey(tc.in)
			if !errors.Is(err, ErrInvalidKeyEncryptionKey) {
				t.Fatalf("err = %v; want ErrInvalidKeyEncryptionKey", err)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[1:9]) {
				t.Fatal("error echoes the input")
			}
		})
	}
}

// TestKeyEncryptionKeyOpenSSL uses openssl as the peer: it generates the key
// as operators are told to, and computes the public KEK id independently.
func TestKeyEncryptionKeyOpenSSL(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	out, err := exec.Command(openssl, "rand", "-base64", "32").Output()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeyEncryptionKey(string(out))
	if err != nil {
		t.Fatalf("openssl rand -base64 32 output rejected: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	cmd := exec.Command(openssl, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(raw))
	cmd.Stdin = strings.NewReader(kekIDLabel)
	mac, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(mac))
	if want := f[len(f)-1][:16]; k.ID() != want {
		t.Fatalf("KEK id = %s; openssl HMAC-SHA256 says %s", k.ID(), want)
	}
}

func TestKeyEncryptionKeyNeverPrintsSecret(t *testing.T) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	k, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "kek", k)
	outs := []string{logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k), fmt.Sprintf(verb, []any{k}))
	}
	for _, o := range outs {
		if strings.Contains(strings.ToLower(o), hex.EncodeToString(raw)[:12]) || strings.Contains(o, base64.StdEncoding.EncodeToString(raw)[:12]) {
			t.Fatalf("KEK secret printed: %s", o)
		}
	}
}

func TestRootKeySealTampering(t *testing.T) {
	k := testKEK(t)
	id := bytes.Repeat([]byte{7}, rootKeyIDLen)
	otherID := bytes.Repeat([]byte{8}, rootKeyIDLen)
	rootKey := bytes.Repeat([]byte{9}, rootKeyLen)
	sealed, err := k.seal(id, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.open(id, sealed); err != nil || !bytes.Equal(got, rootKey) {
		t.Fatalf("round trip: %v", err)
	}
	if bytes.Contains(sealed, rootKey[:8]) {
		t.Fatal("plaintext in ciphertext")
	}
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 0x80; return b }
	for _, tc := range []struct {
		name   string
		id     []byte
		sealed []byte
		k      *KeyEncryptionKey
	}{
		{"flipped_nonce", id, flip(0), k},
		{"flipped_ciphertext", id, flip(13), k},
		{"flipped_tag", id, flip(len(sealed) - 1), k},
		{"truncated", id, sealed[:len(sealed)-1], k},
		{"extended", id, append(bytes.Clone(sealed), 0), k},
		{"empty", id, nil, k},
		{"moved_to_other_id", otherID, sealed, k},
		{"other_kek", id, sealed, testKEK(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.open(tc.id, tc.sealed)
			if !errors.Is(err, ErrRootKeyCorrupt) || got != nil {
				t.Fatalf("open = %x, %v; want ErrRootKeyCorrupt", got, err)
			}
		})
	}
}

func FuzzParseKeyEncryptionKey(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8")
	f.Add("")
	f.Add("====================================================")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeyEncryptionKey(s)
		if (k == nil) == (err == nil) {
			t.Fatalf("key %v and error %v", k, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidKeyEncryptionKey) {
			t.Fatalf("error %v does not wrap ErrInvalidKeyEncryptionKey", err)
		}
	})
}

// FuzzRootKeyGet feeds arbitrary ids to Get and sealed bytes to open: never
// a panic, never a key for anything but the real id.
func FuzzRootKeyGet(f *testing.F) {
	s, err := NewMemoryRootKeyStore(RootKeyPolicy{})
	if err != nil {
		f.Fatal(err)
	}
	_, id, err := s.RootKey(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	kek := testKEK(f)
	sealed, err := kek.seal(id, make([]byte, rootKeyLen))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte("0"), sealed)
	f.Add(bytes.Repeat([]byte{0}, rootKeyIDLen), sealed[:20])
	f.Fuzz(func(t *testing.T, b, sl []byte) {
		key, err := s.Get(context.Background(), b)
		if bytes.Equal(b, id) {
			if err != nil || len(key) != rootKeyLen {
				t.Fatalf("real id: %v", err)
			}
		} else if err != bakery.ErrNotFound || key != nil {
			t.Fatalf("Get(%x) = %x, %v; want bakery.ErrNotFound", b, key, err)
		}
		if _, err := kek.open(b, sl); err == nil && !(bytes.Equal(b, id) && bytes.Equal(sl, sealed)) {
			t.Fatal("open accepted a forged ciphertext")
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
		s, err := NewMemoryRootKeyStore(RootKeyPolicy{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})
	// The bakery's own memory store: one key, never rotated.
	b.Run("baseline", func(b *testing.B) { run(b, bakery.NewMemRootKeyStore()) })
}
