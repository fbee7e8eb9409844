package macaroon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
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
