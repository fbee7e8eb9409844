package macaroon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"gopkg.in/macaroon.v2"
)

// svcStore is a minimal RootKeyStore for this file's tests: one key, with
// failure injection. The real stores are tested in rootkeys_*_test.go.
type svcStore struct {
	mu   sync.Mutex
	keys map[string][]byte
	cur  []byte
	fail error
}

func newSvcStore() *svcStore { return &svcStore{keys: map[string][]byte{}} }

func (s *svcStore) RootKey(context.Context) ([]byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, nil, s.fail
	}
	if s.cur == nil {
		id, key := make([]byte, 16), make([]byte, 32)
		rand.Read(id)
		rand.Read(key)
		s.keys[string(id)], s.cur = key, id
	}
	return s.keys[string(s.cur)], s.cur, nil
}

func (s *svcStore) Get(_ context.Context, id []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	k, ok := s.keys[string(id)]
	if !ok {
		return nil, bakery.ErrNotFound
	}
	return k, nil
}

func (s *svcStore) Revoke(_ context.Context, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, string(id))
	if bytes.Equal(id, s.cur) {
		s.cur = nil
	}
	return nil
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testTP = "https://contracts.example"

var (
	opAdminRead  = bakery.Op{Entity: "admin", Action: "read"}
	opAdminWrite = bakery.Op{Entity: "admin", Action: "write"}
	opRegister   = bakery.Op{Entity: "machine", Action: "register"}
)

// fixture is a service with a pinned third party and a matching
// discharger, sharing a settable clock and a captured log.
type fixture struct {
	svc   *Service
	store *svcStore
	clock *testClock
	tpKey *bakery.KeyPair
	dis   *Discharger
	logs  *bytes.Buffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{store: newSvcStore(), clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: new(bytes.Buffer)}
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if f.tpKey, err = GenerateKey(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, nil))
	f.svc, err = NewService("https://lpsec.example", key, f.store,
		WithThirdParty(testTP, &f.tpKey.Public), WithClock(f.clock.Now), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	f.dis, err = NewDischarger(f.tpKey, func(_ context.Context, _ *http.Request, cond string) error {
		if cond != "entitled" {
			return errors.New("not entitled")
		}
		return nil
	}, WithClock(f.clock.Now), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) login(t testing.TB, user string, ops ...bakery.Op) *bakery.Macaroon {
	t.Helper()
	m, err := f.svc.MintLogin(context.Background(), user, 0, ops...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) resource(t testing.TB, cond string) *bakery.Macaroon {
	t.Helper()
	m, err := f.svc.MintResource(context.Background(), testTP, cond, time.Hour, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// discharge discharges every third-party caveat of m with the fixture's
// discharger (in process) and binds the discharges.
func (f *fixture) discharge(t testing.TB, m *bakery.Macaroon) macaroon.Slice {
	t.Helper()
	ms, err := bakery.DischargeAll(context.Background(), m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
		return f.dis.Discharge(ctx, nil, cav.Id, payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func addCaveat(t testing.TB, m *macaroon.Macaroon, cond string) {
	t.Helper()
	if err := m.AddFirstPartyCaveat([]byte(cond)); err != nil {
		t.Fatal(err)
	}
}

func TestMintLoginVerify(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead, opAdminWrite)
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m.M()}}, opAdminWrite)
	if err != nil {
		t.Fatal(err)
	}
	if g.User != "alice" || len(g.Ops) != 2 || !g.Expiry.Equal(f.clock.Now().Add(DefaultTTL)) {
		t.Fatalf("grant = %+v", g)
	}
	if !strings.Contains(f.logs.String(), `"event":"macaroon_minted"`) {
		t.Fatalf("no macaroon_minted event in %s", f.logs)
	}
}

func TestMintTTLCappedAtMaxTTL(t *testing.T) {
	f := newFixture(t)
	m, err := f.svc.MintLogin(context.Background(), "alice", 10000*time.Hour, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m.M()}}, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(DefaultMaxTTL); !g.Expiry.Equal(want) {
		t.Fatalf("expiry %v, want capped %v", g.Expiry, want)
	}
	f.clock.Advance(DefaultMaxTTL)
	if _, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m.M()}}, opAdminRead); !errors.Is(err, ErrExpired) {
		t.Fatalf("after MaxTTL: %v, want ErrExpired", err)
	}
}

func TestMintRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, mint := range map[string]func() error{
		"no ops":               func() error { _, err := f.svc.MintLogin(ctx, "alice", 0); return err },
		"empty user":           func() error { _, err := f.svc.MintLogin(ctx, "", 0, opAdminRead); return err },
		"control char in user": func() error { _, err := f.svc.MintLogin(ctx, "al\nice", 0, opAdminRead); return err },
		"negative ttl":         func() error { _, err := f.svc.MintLogin(ctx, "alice", -time.Second, opAdminRead); return err },
		"empty op action":      func() error { _, err := f.svc.MintLogin(ctx, "alice", 0, bakery.Op{Entity: "x"}); return err },
		"unpinned third party": func() error {
			_, err := f.svc.MintResource(ctx, "https://evil.example", "c", 0, opRegister)
			return err
		},
		"local third party": func() error {
			_, err := f.svc.MintResource(ctx, "local 3 "+f.tpKey.Public.String(), "", 0, opRegister)
			return err
		},
		"empty condition": func() error { _, err := f.svc.MintResource(ctx, testTP, "", 0, opRegister); return err },
		"store down while minting": func() error {
			f.store.fail = errors.New("db down")
			defer func() { f.store.fail = nil }()
			_, err := f.svc.MintLogin(ctx, "alice", 0, opAdminRead)
			return err
		},
	} {
		if err := mint(); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
}

func TestNewServiceRejectsBadConfig(t *testing.T) {
	key, _ := GenerateKey()
	other, _ := GenerateKey()
	mismatched := &bakery.KeyPair{Public: other.Public, Private: key.Private}
	store := newSvcStore()
	for _, tc := range []struct {
		name     string
		location string
		key      *bakery.KeyPair
		store    RootKeyStore
		opts     []Option
		want     error
		msg      string
	}{
		{"no location", "", key, store, nil, ErrInvalidOption, "empty location"},
		{"no key", "l", nil, store, nil, ErrInvalidKey, "key"},
		{"mismatched key", "l", mismatched, store, nil, ErrInvalidKey, "key"},
		{"no store", "l", key, nil, nil, ErrInvalidOption, "nil RootKeyStore"},
		{"default above max", "l", key, store, []Option{WithDefaultTTL(2 * time.Hour), WithMaxTTL(time.Hour)}, ErrInvalidOption, "WithDefaultTTL 2h0m0s exceeds WithMaxTTL 1h0m0s"},
		{"default above default max", "l", key, store, []Option{WithDefaultTTL(241 * time.Hour)}, ErrInvalidOption, "exceeds WithMaxTTL"},
		{"zero default ttl", "l", key, store, []Option{WithDefaultTTL(0)}, ErrInvalidOption, "WithDefaultTTL: duration 0s is not positive"},
		{"negative max ttl", "l", key, store, []Option{WithMaxTTL(-time.Hour)}, ErrInvalidOption, "WithMaxTTL: duration -1h0m0s is not positive"},
		{"http third party", "l", key, store, []Option{WithThirdParty("http://c.example", &other.Public)}, ErrInvalidOption, "WithThirdParty"},
		{"nil third-party key", "l", key, store, []Option{WithThirdParty(testTP, nil)}, ErrInvalidOption, "nil public key"},
		{"userinfo third party", "l", key, store, []Option{WithThirdParty("https://u:p@c.example", &other.Public)}, ErrInvalidOption, "WithThirdParty"},
		{"third party twice", "l", key, store, []Option{WithThirdParty(testTP, &other.Public), WithThirdParty(testTP, &other.Public)}, ErrInvalidOption, "given twice"},
		{"nil logger", "l", key, store, []Option{WithLogger(nil)}, ErrInvalidOption, "WithLogger: nil logger"},
		{"nil clock", "l", key, store, []Option{WithClock(nil)}, ErrInvalidOption, "WithClock: nil clock"},
		{"discharge ttl to service", "l", key, store, []Option{WithDischargeTTL(time.Minute)}, ErrInvalidOption, "WithDischargeTTL does not apply to NewService"},
		{"rotation to service", "l", key, store, []Option{WithRotationPeriod(time.Hour)}, ErrInvalidOption, "WithRotationPeriod does not apply to NewService"},
		{"zero option", "l", key, store, []Option{{}}, ErrInvalidOption, "zero Option given to NewService"},
	} {
		_, err := NewService(tc.location, tc.key, tc.store, tc.opts...)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v; want %v saying %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

// TestVerifyHostile is the table of attacks on verification, each with the
// exact error it must produce.
// withCaveatLocation returns a copy of m whose caveat i carries location
// loc, made through the JSON form, which (unlike the binary form) accepts a
// location on a first-party caveat. The signature stays valid: the location
// is not part of it.
func withCaveatLocation(t testing.TB, m *macaroon.Macaroon, i int, loc string) *macaroon.Macaroon {
	t.Helper()
	data, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		C []map[string]any `json:"c"`
	}
	var rest map[string]any
	if err := json.Unmarshal(data, &rest); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	j.C[i]["l"] = loc
	rest["c"] = j.C
	data, _ = json.Marshal(rest)
	var out macaroon.Macaroon
	if err := out.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestVerifyHostile(t *testing.T) {
	type attack struct {
		name  string
		build func(t *testing.T, f *fixture) []macaroon.Slice
		ops   []bakery.Op
		want  error
	}
	login := func(t *testing.T, f *fixture) []macaroon.Slice {
		return []macaroon.Slice{{f.login(t, "alice", opAdminRead).M()}}
	}
	attacks := []attack{
		{"empty operation list passes in the bakery", login, nil, ErrDenied},
		{"no macaroon", func(*testing.T, *fixture) []macaroon.Slice { return nil }, []bakery.Op{opAdminRead}, ErrMissing},
		{"operation not granted", login, []bakery.Op{opAdminWrite}, ErrDenied},
		{"one granted one not", login, []bakery.Op{opAdminRead, opAdminWrite}, ErrDenied},
		{"expired", func(t *testing.T, f *fixture) []macaroon.Slice {
			mss := login(t, f)
			f.clock.Advance(DefaultTTL)
			return mss
		}, []bakery.Op{opAdminRead}, ErrExpired},
		{"revoked root key", func(t *testing.T, f *fixture) []macaroon.Slice {
			mss := login(t, f)
			f.store.Revoke(context.Background(), f.store.cur)
			return mss
		}, []bakery.Op{opAdminRead}, ErrUnknownRootKey},
		{"store unavailable fails closed", func(t *testing.T, f *fixture) []macaroon.Slice {
			mss := login(t, f)
			f.store.fail = errors.New("connection refused")
			return mss
		}, []bakery.Op{opAdminRead}, ErrUnavailable},
		{"forged signature with a guessed root key", func(t *testing.T, f *fixture) []macaroon.Slice {
			real := f.login(t, "alice", opAdminRead).M()
			forged, err := macaroon.New(make([]byte, 32), real.Id(), real.Location(), real.Version())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range real.Caveats() {
				addCaveat(t, forged, string(c.Id))
			}
			return []macaroon.Slice{{forged}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"widen operations by editing the id", func(t *testing.T, f *fixture) []macaroon.Slice {
			narrow := f.login(t, "alice", opAdminRead).M()
			wider := f.login(t, "alice", opAdminRead, opAdminWrite).M()
			// Keep the narrow macaroon's caveats and signature, swap in
			// the id that lists more operations.
			var j map[string]any
			data, _ := narrow.MarshalJSON()
			wdata, _ := wider.MarshalJSON()
			var wj map[string]any
			if err := json.Unmarshal(data, &j); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(wdata, &wj); err != nil {
				t.Fatal(err)
			}
			j["i64"], j["i"] = wj["i64"], wj["i"]
			data, _ = json.Marshal(j)
			var forged macaroon.Macaroon
			if err := forged.UnmarshalJSON(data); err != nil {
				t.Fatal(err)
			}
			return []macaroon.Slice{{&forged}}
		}, []bakery.Op{opAdminWrite}, ErrDenied},
		{"holder adds conflicting declared user to login macaroon", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, "declared username root")
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"holder repeats the declared user", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, "declared username alice")
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"holder declares a user on a resource macaroon that had none", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.resource(t, "entitled")
			addCaveat(t, m.M(), "declared username root")
			return []macaroon.Slice{f.discharge(t, m)}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"holder declares another attribute", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, "declared role admin")
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"holder declares a user in a discharge", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.resource(t, "entitled")
			ms, err := bakery.DischargeAll(context.Background(), m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
				d, err := f.dis.Discharge(ctx, nil, cav.Id, payload)
				if err == nil {
					err = d.M().AddFirstPartyCaveat([]byte("declared username root"))
				}
				return d, err
			})
			if err != nil {
				t.Fatal(err)
			}
			return []macaroon.Slice{ms}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"holder hides the minted expiry behind a location and adds a later one", func(t *testing.T, f *fixture) []macaroon.Slice {
			// A first-party caveat's location is not signed, so anyone can
			// set it in the JSON form; a verifier that took it for a
			// third-party caveat would skip the minted expiry.
			m := withCaveatLocation(t, f.login(t, "alice", opAdminRead).M(), 1, testTP)
			addCaveat(t, m, checkers.TimeBeforeCaveat(f.clock.Now().Add(10*DefaultMaxTTL)).Condition)
			f.clock.Advance(DefaultTTL)
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrMalformed},
		{"holder hides the discharge expiry behind a location", func(t *testing.T, f *fixture) []macaroon.Slice {
			ms := f.discharge(t, f.resource(t, "entitled"))
			ms[1] = withCaveatLocation(t, ms[1], 0, testTP)
			f.clock.Advance(DefaultDischargeTTL)
			return []macaroon.Slice{ms}
		}, []bakery.Op{opRegister}, ErrMalformed},
		{"holder hides the declared user behind a location", func(t *testing.T, f *fixture) []macaroon.Slice {
			return []macaroon.Slice{{withCaveatLocation(t, f.login(t, "alice", opAdminRead).M(), 0, testTP)}}
		}, []bakery.Op{opAdminRead}, ErrMalformed},
		{"holder adds a caveat lpsec does not understand", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, "allow everything")
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"holder adds a past time-before", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, checkers.TimeBeforeCaveat(f.clock.Now().Add(-time.Second)).Condition)
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrExpired},
		{"holder adds an unparsable time-before", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			addCaveat(t, m, "time-before tomorrow")
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"macaroon without expiry", func(t *testing.T, f *fixture) []macaroon.Slice {
			bm, err := f.svc.oven.NewMacaroon(context.Background(), bakery.LatestVersion, nil, opAdminRead)
			if err != nil {
				t.Fatal(err)
			}
			return []macaroon.Slice{{bm.M()}}
		}, []bakery.Op{opAdminRead}, ErrDenied},
		{"missing discharge", func(t *testing.T, f *fixture) []macaroon.Slice {
			return []macaroon.Slice{{f.resource(t, "entitled").M()}}
		}, []bakery.Op{opRegister}, ErrDischargeRequired},
		{"expired discharge", func(t *testing.T, f *fixture) []macaroon.Slice {
			ms := f.discharge(t, f.resource(t, "entitled"))
			f.clock.Advance(DefaultDischargeTTL)
			return []macaroon.Slice{ms}
		}, []bakery.Op{opRegister}, ErrDischargeRequired},
		{"discharge not bound to the primary", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.resource(t, "entitled")
			var raw *bakery.Macaroon
			_, err := bakery.DischargeAll(context.Background(), m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
				d, err := f.dis.Discharge(ctx, nil, cav.Id, payload)
				raw = d
				return d, err
			})
			if err != nil {
				t.Fatal(err)
			}
			return []macaroon.Slice{{m.M(), raw.M()}}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"discharge forged without the caveat root key", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.resource(t, "entitled")
			var tp macaroon.Caveat
			for _, c := range m.M().Caveats() {
				if c.Location != "" {
					tp = c
				}
			}
			d, _ := macaroon.New(make([]byte, 24), tp.Id, "", macaroon.V2)
			d.Bind(m.M().Signature())
			return []macaroon.Slice{{m.M(), d}}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"discharge of another macaroon", func(t *testing.T, f *fixture) []macaroon.Slice {
			a := f.discharge(t, f.resource(t, "entitled"))
			b := f.resource(t, "entitled")
			// Version 3 caveat ids are per-macaroon counters, so the
			// ids match and only the signature tells them apart.
			return []macaroon.Slice{{b.M(), a[1]}}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"extra unused discharge", func(t *testing.T, f *fixture) []macaroon.Slice {
			ms := f.discharge(t, f.resource(t, "entitled"))
			other := f.discharge(t, f.resource(t, "entitled"))
			return []macaroon.Slice{append(ms, other[1])}
		}, []bakery.Op{opRegister}, ErrDenied},
		{"too many slices", func(t *testing.T, f *fixture) []macaroon.Slice {
			mss := login(t, f)
			return append(append(append(append(mss, mss[0]), mss[0]), mss[0]), mss[0])
		}, []bakery.Op{opAdminRead}, ErrMalformed},
		{"too many macaroons in a slice", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			ms := macaroon.Slice{m}
			for len(ms) <= MaxMacaroonsPerSlice {
				ms = append(ms, m)
			}
			return []macaroon.Slice{ms}
		}, []bakery.Op{opAdminRead}, ErrMalformed},
		{"too many caveats", func(t *testing.T, f *fixture) []macaroon.Slice {
			m := f.login(t, "alice", opAdminRead).M()
			for range MaxCaveats {
				addCaveat(t, m, checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Hour)).Condition)
			}
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrMalformed},
		{"null macaroon", func(*testing.T, *fixture) []macaroon.Slice { return []macaroon.Slice{{nil}} }, []bakery.Op{opAdminRead}, ErrMalformed},
		{"empty slice", func(*testing.T, *fixture) []macaroon.Slice { return []macaroon.Slice{{}} }, []bakery.Op{opAdminRead}, ErrMalformed},
		{"legacy id without operations", func(t *testing.T, f *fixture) []macaroon.Slice {
			m, _ := macaroon.New(make([]byte, 32), []byte("0123456789abcdef-legacy"), "", macaroon.V2)
			return []macaroon.Slice{{m}}
		}, []bakery.Op{opAdminRead}, ErrMalformed},
	}
	for _, a := range attacks {
		t.Run(strings.ReplaceAll(a.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t)
			mss := a.build(t, f)
			g, err := f.svc.Verify(context.Background(), mss, a.ops...)
			if !errors.Is(err, a.want) || g != nil {
				t.Fatalf("Verify = %+v, %v; want %v", g, err, a.want)
			}
			if !strings.Contains(f.logs.String(), `"event":"macaroon_verify_failed","reason":"`+reason(a.want)+`"`) {
				t.Fatalf("no verify_failed event with reason %s in %s", reason(a.want), f.logs)
			}
		})
	}
}

func TestDischargeRequiredNamesCaveats(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	_, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m.M()}}, opRegister)
	var dre *DischargeRequiredError
	if !errors.As(err, &dre) || len(dre.Caveats) != 1 || dre.Caveats[0].Location != testTP {
		t.Fatalf("err = %#v", err)
	}
	if errors.Is(err, ErrExpired) {
		t.Fatal("missing discharge must not match ErrExpired")
	}
	ms := f.discharge(t, m)
	f.clock.Advance(DefaultDischargeTTL)
	_, err = f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opRegister)
	if !errors.As(err, &dre) || !errors.Is(err, ErrExpired) || dre.Caveats[0].Location != testTP {
		t.Fatalf("expired discharge: %v", err)
	}
}

func TestResourceMacaroonDischarged(t *testing.T) {
	f := newFixture(t)
	ms := f.discharge(t, f.resource(t, "entitled"))
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	if g.User != "" || !g.Expiry.Equal(f.clock.Now().Add(DefaultDischargeTTL)) {
		t.Fatalf("grant %+v: want no user and the discharge's earlier expiry", g)
	}
}

func TestHolderRestrictionStillVerifies(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead).M()
	exp := f.clock.Now().Add(time.Minute)
	addCaveat(t, m, checkers.TimeBeforeCaveat(exp).Condition)
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m}}, opAdminRead)
	if err != nil || g.User != "alice" || !g.Expiry.Equal(exp) {
		t.Fatalf("%+v, %v", g, err)
	}
}

func TestVerifyPicksTheGoodSlice(t *testing.T) {
	f := newFixture(t)
	bad := f.resource(t, "entitled").M() // undischarged
	good := f.login(t, "alice", opAdminRead).M()
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{{bad}, {good}}, opAdminRead)
	if err != nil || g.User != "alice" {
		t.Fatalf("%+v, %v", g, err)
	}
	_, err = f.svc.Verify(context.Background(), []macaroon.Slice{{good}, {bad}}, opRegister)
	if !errors.Is(err, ErrDischargeRequired) {
		t.Fatalf("want the most specific failure (discharge required), got %v", err)
	}
}

func TestEventsNeverCarryTheMacaroon(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead)
	enc, err := EncodeSlice(macaroon.Slice{m.M()})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Macaroon "+enc)
	if _, err := f.svc.VerifyRequest(context.Background(), r, opAdminWrite); !errors.Is(err, ErrDenied) {
		t.Fatal(err)
	}
	logs := f.logs.String()
	for _, secret := range []string{enc, fmt.Sprintf("%x", m.M().Signature()), string(m.M().Signature())} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log carries macaroon material: %s", logs)
		}
	}
}

// With the package's rotating memory store: revocation kills every
// macaroon minted under the key, and the next mint uses a fresh key.
func TestServiceWithMemoryRootKeyStore(t *testing.T) {
	store, err := NewMemoryRootKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	svc, err := NewService("https://lpsec.example", key, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := svc.MintLogin(ctx, "alice", time.Hour, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []Slice{{m.M()}}, opAdminRead); err != nil {
		t.Fatal(err)
	}
	_, id, err := store.RootKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []Slice{{m.M()}}, opAdminRead); !errors.Is(err, ErrUnknownRootKey) {
		t.Fatalf("after revoke: %v, want ErrUnknownRootKey", err)
	}
	m2, err := svc.MintLogin(ctx, "alice", time.Hour, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []Slice{{m2.M()}}, opAdminRead); err != nil {
		t.Fatalf("fresh key after revoke: %v", err)
	}
}

func TestStoreFailureKeepsItsCause(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead)
	cause := errors.New("connection refused")
	f.store.fail = fmt.Errorf("get root key: %w", cause)
	_, err := f.svc.Verify(context.Background(), []Slice{{m.M()}}, opAdminRead)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping the store's cause", err)
	}
	// A store that already says ErrUnavailable is passed on, not wrapped twice.
	f.store.fail = fmt.Errorf("%w: get: %w", ErrUnavailable, cause)
	_, err = f.svc.Verify(context.Background(), []Slice{{m.M()}}, opAdminRead)
	if !errors.Is(err, cause) || strings.Count(err.Error(), "unavailable") != 1 {
		t.Fatalf("err = %q, want one ErrUnavailable wrapping the cause", err)
	}
}
