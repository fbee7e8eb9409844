package macaroon_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/revocationtest"
)

func TestRevocationMemoryConformance(t *testing.T) {
	// Two instances of one process share the one memory store.
	var mu sync.Mutex
	stores := map[*testing.T]macaroon.RevocationStore{}
	revocationtest.Run(t, func(t *testing.T, opts ...macaroon.Option) macaroon.RevocationStore {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stores[t]; ok {
			return s
		}
		s, err := macaroon.NewMemoryRevocationStore(opts...)
		if err != nil {
			t.Fatal(err)
		}
		stores[t] = s
		return s
	})
}

var (
	opRead  = bakery.Op{Entity: "admin", Action: "read"}
	opWrite = bakery.Op{Entity: "admin", Action: "write"}
)

func newSessionService(t *testing.T, opts ...macaroon.Option) *macaroon.Service {
	t.Helper()
	key, err := macaroon.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := macaroon.NewMemoryRootKeyStore()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := macaroon.NewService("https://lpsec.example", key, keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// A holder narrows a login macaroon with allow and deny caveats: the
// narrowed macaroon works for what is left and is refused for the rest,
// and no caveat can add an operation back.
func TestAttenuation(t *testing.T) {
	ctx := context.Background()
	svc := newSessionService(t)
	m, err := svc.MintLogin(ctx, "alice", time.Hour, opRead, opWrite)
	if err != nil {
		t.Fatal(err)
	}
	attenuate := func(cavs ...string) *bakery.Macaroon {
		n := m.Clone()
		for _, c := range cavs {
			name, arg, _ := strings.Cut(c, " ")
			cav := macaroon.AllowCaveat(strings.Fields(arg)...)
			if name == "deny" {
				cav = macaroon.DenyCaveat(strings.Fields(arg)...)
			}
			if err := n.AddCaveat(ctx, cav, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	for _, c := range []struct {
		name      string
		caveats   []string
		read, wrt bool
	}{
		{"none", nil, true, true},
		{"allow read", []string{"allow read"}, true, false},
		{"allow both", []string{"allow read write"}, true, true},
		{"allow unknown action", []string{"allow delete"}, false, false},
		{"allow nothing", []string{"allow"}, false, false},
		{"intersection", []string{"allow read write", "allow write"}, false, true},
		{"cannot widen", []string{"allow read", "allow read write"}, true, false},
		{"deny write", []string{"deny write"}, true, false},
		{"allow then deny", []string{"allow read write", "deny read"}, false, true},
	} {
		n := attenuate(c.caveats...)
		for _, op := range []struct {
			op   bakery.Op
			want bool
		}{{opRead, c.read}, {opWrite, c.wrt}} {
			g, err := svc.Verify(ctx, []macaroon.Slice{{n.M()}}, op.op)
			if op.want && (err != nil || g.User != "alice") {
				t.Errorf("%s: %s: %v, want granted", c.name, op.op.Action, err)
			}
			if !op.want && !errors.Is(err, macaroon.ErrDenied) {
				t.Errorf("%s: %s: %v, want ErrDenied", c.name, op.op.Action, err)
			}
			if err == nil && len(g.Ops) != btoi(c.read)+btoi(c.wrt) {
				t.Errorf("%s: grant lists %v", c.name, g.Ops)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// An issued-at caveat anywhere but where MintLogin writes it is refused: a
// holder appending a later issue time must not escape a cut-off.
func TestIssuedAtOnlyAtMintingPosition(t *testing.T) {
	ctx := context.Background()
	svc := newSessionService(t)
	m, err := svc.MintLogin(ctx, "alice", time.Hour, opRead)
	if err != nil {
		t.Fatal(err)
	}
	n := m.Clone()
	if err := n.M().AddFirstPartyCaveat([]byte("issued-at 2099-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []macaroon.Slice{{n.M()}}, opRead); !errors.Is(err, macaroon.ErrDenied) {
		t.Fatalf("appended issued-at: %v, want ErrDenied", err)
	}
}

// WithCheckUser refuses a user at the next request, and an unavailable
// directory fails closed with ErrUnavailable.
func TestCheckUser(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	removed := map[string]bool{}
	errDirectory := errors.New("directory down")
	down := false
	svc := newSessionService(t, macaroon.WithCheckUser(func(_ context.Context, user string) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.Join(macaroon.ErrUnavailable, errDirectory)
		}
		if removed[user] {
			return errors.New("not in the admin list")
		}
		return nil
	}))
	m, err := svc.MintLogin(ctx, "alice", time.Hour, opRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, []macaroon.Slice{{m.M()}}, opRead); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	removed["alice"] = true
	mu.Unlock()
	if _, err := svc.Verify(ctx, []macaroon.Slice{{m.M()}}, opRead); !errors.Is(err, macaroon.ErrUserRefused) {
		t.Fatalf("removed user: %v, want ErrUserRefused", err)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	if _, err := svc.Verify(ctx, []macaroon.Slice{{m.M()}}, opRead); !errors.Is(err, macaroon.ErrUnavailable) {
		t.Fatalf("directory down: %v, want ErrUnavailable", err)
	}
}

func TestSessionOptionsMisuse(t *testing.T) {
	key, _ := macaroon.GenerateKey()
	keys, _ := macaroon.NewMemoryRootKeyStore()
	for _, c := range []struct {
		name string
		opt  macaroon.Option
		want string
	}{
		{"nil store", macaroon.WithRevocations(nil), "WithRevocations: nil RevocationStore"},
		{"nil check", macaroon.WithCheckUser(nil), "WithCheckUser: nil check"},
		{"no cache on service", macaroon.WithoutRevocationCache(), "WithoutRevocationCache does not apply to NewService"},
	} {
		_, err := macaroon.NewService("l", key, keys, c.opt)
		if !errors.Is(err, macaroon.ErrInvalidOption) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalidOption naming %q", c.name, err, c.want)
		}
	}
	if _, err := macaroon.NewMemoryRevocationStore(macaroon.WithCacheTTL(time.Second)); !errors.Is(err, macaroon.ErrInvalidOption) {
		t.Errorf("WithCacheTTL on the memory store: %v", err)
	}
	svc, _ := macaroon.NewService("l", key, keys)
	if err := svc.RevokeAll(context.Background(), time.Time{}); !errors.Is(err, macaroon.ErrNoRevocationStore) {
		t.Errorf("RevokeAll without a store: %v", err)
	}
}
