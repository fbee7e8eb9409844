package macaroon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
)

// FuzzAttenuation appends a holder's first-party caveat to a login
// macaroon: whatever it says, verification never panics, never grants an
// operation the macaroon did not carry, never changes the user, and fails
// only with documented errors.
func FuzzAttenuation(f *testing.F) {
	fx := newFixture(f)
	read, write := bakery.Op{Entity: "admin", Action: "read"}, bakery.Op{Entity: "admin", Action: "write"}
	other := bakery.Op{Entity: "admin", Action: "delete"}
	login := fx.login(f, "alice", read, write)
	for _, s := range []string{"allow read", "deny read", "allow", "allow read write delete", "deny", "issued-at 2099-01-01T00:00:00Z",
		"declared username mallory", "allow  read\twrite", "allow delete", "time-before 2000-01-01T00:00:00Z", "allow \x00"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, caveat string, which uint8) {
		m := login.Clone()
		if err := m.M().AddFirstPartyCaveat([]byte(caveat)); err != nil {
			return
		}
		op := []bakery.Op{read, write, other}[int(which)%3]
		g, err := fx.svc.Verify(context.Background(), []Slice{{m.M()}}, op)
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrExpired, ErrDenied} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		if op == other {
			t.Fatalf("caveat %q granted an operation the macaroon never had", caveat)
		}
		if g.User != "alice" || len(g.Ops) > 2 {
			t.Fatalf("caveat %q changed the grant: %+v", caveat, g)
		}
	})
}

// FuzzCheckRevocation: any record either passes with a well-formed id or
// user, or fails with ErrInvalidRevocation; never a panic.
func FuzzCheckRevocation(f *testing.F) {
	f.Add("", "alice", false, int64(1))
	f.Add("ab", "", true, int64(0))
	f.Add("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "", false, int64(0))
	f.Fuzz(func(t *testing.T, id, user string, all bool, before int64) {
		r := Revocation{ID: id, User: user, All: all, Expires: time.Unix(1, 0)}
		if before != 0 {
			r.Before = time.Unix(before, 0)
		}
		err := CheckRevocation(r)
		if err != nil {
			if !errors.Is(err, ErrInvalidRevocation) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if id != "" && !validMacaroonID(id) || user != "" && checkUser(user) != nil {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// A login macaroon minted before lpsec wrote issued-at (declared user,
// then time-before) counts as issued at the zero time, so every user
// cut-off covers it, and its holder cannot add an issue time: the only
// position Verify reads it from already holds the time-before.
func TestIssuedAtOldLayout(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	store, err := NewMemoryRevocationStore(WithClock(fx.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService("https://lpsec.example", fx.svc.key, fx.store, WithClock(fx.clock.Now), WithRevocations(store))
	if err != nil {
		t.Fatal(err)
	}
	read := bakery.Op{Entity: "admin", Action: "read"}
	old, err := svc.mint(ctx, "login", "alice", "", time.Hour, []bakery.Op{read}, func(exp, _ time.Time) []checkers.Caveat {
		return []checkers.Caveat{checkers.DeclaredCaveat(userKey, "alice"), checkers.TimeBeforeCaveat(exp)}
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Verify(ctx, []Slice{{old.M()}}, read)
	if err != nil || !g.Issued.IsZero() {
		t.Fatalf("old layout: %+v, %v", g, err)
	}
	forged := old.Clone()
	if err := forged.M().AddFirstPartyCaveat([]byte("issued-at " + fx.clock.Now().Add(time.Minute).Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []Slice{{forged.M()}}, read); !errors.Is(err, ErrDenied) {
		t.Fatalf("issued-at appended to an old layout: %v, want ErrDenied", err)
	}
	fx.clock.Advance(time.Second)
	if err := svc.RevokeUser(ctx, "alice", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []Slice{{old.M()}}, read); !errors.Is(err, ErrRevoked) {
		t.Fatalf("old layout after RevokeUser: %v, want ErrRevoked", err)
	}
}

// Revocations and refusals are security events: macaroon_revoked with its
// scope, macaroon_verify_failed with reason revoked or user_refused, and
// never the macaroon or its signature.
func TestSessionEvents(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	store, _ := NewMemoryRevocationStore(WithClock(fx.clock.Now))
	removed := false
	svc, err := NewService("https://lpsec.example", fx.svc.key, fx.store, WithClock(fx.clock.Now), WithLogger(logger),
		WithRevocations(store), WithCheckUser(func(context.Context, string) error {
			if removed {
				return errors.New("gone")
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	read := bakery.Op{Entity: "admin", Action: "read"}
	m, _ := svc.MintLogin(ctx, "alice", time.Hour, read)
	g, err := svc.Verify(ctx, []Slice{{m.M()}}, read)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, g); err != nil {
		t.Fatal(err)
	}
	_, _ = svc.Verify(ctx, []Slice{{m.M()}}, read)
	removed = true
	_, _ = svc.Verify(ctx, []Slice{{m.M()}}, read)
	out := logs.String()
	for _, want := range []string{`"event":"macaroon_revoked"`, `"scope":"logout"`, `"macaroon_id":"` + g.ID + `"`,
		`"reason":"revoked"`, `"reason":"user_refused"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	bin, _ := m.M().MarshalBinary()
	for _, secret := range []string{hex.EncodeToString(m.M().Signature()), base64.RawURLEncoding.EncodeToString(bin)} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries the macaroon or its signature")
		}
	}
}
