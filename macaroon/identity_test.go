package macaroon

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
	"gopkg.in/macaroon.v2"
)

const testIDP = "https://login.example"

// idFixture is the package fixture plus a pinned identity provider whose
// discharger declares alice (groups admins, ops) unless told otherwise.
type idFixture struct {
	*fixture
	idpKey *bakery.KeyPair
	idDis  *Discharger
	who    Identity
	revs   *MemoryRevocationStore
	users  map[string]bool // WithCheckUser's directory
}

func newIDFixture(t testing.TB) *idFixture {
	t.Helper()
	f := &idFixture{fixture: newFixture(t), who: Identity{User: "alice", Groups: []string{"admins", "ops"}}, users: map[string]bool{"alice": true}}
	var err error
	if f.idpKey, err = GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if f.revs, err = NewMemoryRevocationStore(WithClock(f.clock.Now)); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, nil))
	f.svc, err = NewService("https://lpsec.example", f.svc.key, f.store,
		WithThirdParty(testTP, &f.tpKey.Public), WithIdentityProvider(testIDP, &f.idpKey.Public),
		WithRevocations(f.revs), WithCheckUser(func(_ context.Context, u string) error {
			if !f.users[u] {
				return errors.New("not an admin")
			}
			return nil
		}), WithClock(f.clock.Now), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	f.idDis, err = NewIdentityDischarger(f.idpKey, func(context.Context, *http.Request) (Identity, error) { return f.who, nil },
		WithClock(f.clock.Now), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *idFixture) idLogin(t testing.TB, ops ...bakery.Op) *bakery.Macaroon {
	t.Helper()
	m, err := f.svc.MintIdentityLogin(context.Background(), testIDP, 0, ops...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dischargeWith discharges every third-party caveat of m: caveats for
// testIDP with the identity discharger, others with the contracts one;
// tamper may change each discharge before it is bound, as a holder can.
func (f *idFixture) dischargeWith(t testing.TB, m *bakery.Macaroon, tamper func(loc string, dm *bakery.Macaroon)) macaroon.Slice {
	t.Helper()
	ms, err := bakery.DischargeAll(context.Background(), m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
		d := f.dis
		if cav.Location == testIDP {
			d = f.idDis
		}
		dm, err := d.Discharge(ctx, nil, cav.Id, payload)
		if err == nil && tamper != nil {
			tamper(cav.Location, dm)
		}
		return dm, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// forge discharges every third-party caveat of m as the holder of key
// would (a third party or an identity provider misbehaving), writing conds
// as the discharge's first-party caveats.
func forge(t testing.TB, key *bakery.KeyPair, m *bakery.Macaroon, conds ...string) macaroon.Slice {
	t.Helper()
	ms, err := bakery.DischargeAll(context.Background(), m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
		if len(payload) == 0 {
			payload = cav.Id
		}
		info, err := decryptCaveat(key, payload)
		if err != nil {
			return nil, err
		}
		dm, err := bakery.NewMacaroon(info.rootKey, cav.Id, "", info.version, info.ns)
		if err != nil {
			return nil, err
		}
		for _, c := range conds {
			if err := dm.M().AddFirstPartyCaveat([]byte(c)); err != nil {
				return nil, err
			}
		}
		return dm, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// appendThirdParty appends, as a holder can, a third-party caveat
// addressed to loc (encrypted to key) to m.
func appendThirdParty(t testing.TB, m *bakery.Macaroon, loc string, key *bakery.PublicKey, cond string) {
	t.Helper()
	holder, _ := GenerateKey()
	loc8 := bakery.NewThirdPartyStore()
	loc8.AddInfo(loc, bakery.ThirdPartyInfo{PublicKey: *key, Version: bakery.LatestVersion})
	if err := m.AddCaveat(context.Background(), checkers.Caveat{Location: loc, Condition: cond}, holder, loc8); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityLoginVerify(t *testing.T) {
	f := newIDFixture(t)
	m := f.idLogin(t, opAdminRead)
	// Undischarged, it grants nothing and names the identity provider.
	_, err := f.svc.Verify(context.Background(), []macaroon.Slice{{m.M()}}, opAdminRead)
	var dr *DischargeRequiredError
	if !errors.As(err, &dr) || len(dr.Caveats) != 1 || dr.Caveats[0].Location != testIDP {
		t.Fatalf("undischarged: err = %v; want a DischargeRequiredError naming %s", err, testIDP)
	}
	ms := f.dischargeWith(t, m, nil)
	g, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if g.User != "alice" || fmt.Sprint(g.Groups) != "[admins ops]" || !g.Issued.Equal(f.clock.Now()) {
		t.Fatalf("grant = %+v; want alice, [admins ops], issued now", g)
	}
	// The discharge expires (DefaultDischargeTTL) long before the login.
	if !g.Expiry.Equal(f.clock.Now().Add(DefaultDischargeTTL)) {
		t.Fatalf("expiry %v; want the discharge's", g.Expiry)
	}
	if !strings.Contains(f.logs.String(), `"event":"macaroon_identity_declared","user":"alice","groups":2,"identity_provider":"https://login.example"`) {
		t.Fatalf("no macaroon_identity_declared event in %s", f.logs)
	}
	// A login without groups has nil Groups.
	f.who = Identity{User: "alice"}
	g, err = f.svc.Verify(context.Background(), []macaroon.Slice{f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)}, opAdminRead)
	if err != nil || g.Groups != nil {
		t.Fatalf("no groups: grant %+v, err %v", g, err)
	}
}

// The user an identity provider declares goes through the same session
// checks as a Basic login: WithCheckUser, RevokeUser, Logout.
func TestIdentityLoginSessionChecks(t *testing.T) {
	ctx := context.Background()
	f := newIDFixture(t)
	f.who = Identity{User: "mallory"}
	_, err := f.svc.Verify(ctx, []macaroon.Slice{f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)}, opAdminRead)
	if !errors.Is(err, ErrUserRefused) {
		t.Fatalf("user not in the directory: err = %v; want ErrUserRefused", err)
	}
	f.who = Identity{User: "alice"}
	ms := f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
	f.clock.Advance(time.Second)
	if err := f.svc.RevokeUser(ctx, "alice", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(ctx, []macaroon.Slice{ms}, opAdminRead); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after RevokeUser: err = %v; want ErrRevoked", err)
	}
	// A login after the cut-off works, and Logout ends it.
	f.clock.Advance(time.Second)
	ms = f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
	g, err := f.svc.Verify(ctx, []macaroon.Slice{ms}, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(ctx, []macaroon.Slice{ms}, opAdminRead); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after Logout: err = %v; want ErrRevoked", err)
	}
}

// TestIdentityHostile: every way to get a user or groups from somewhere
// other than the pinned identity provider's discharge, with the exact
// error.
func TestIdentityHostile(t *testing.T) {
	tb := func(f *idFixture) string { return checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Minute)).Condition }
	declared := func(k, v string) string { return checkers.DeclaredCaveat(k, v).Condition }
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, f *idFixture) macaroon.Slice
		want  error
		msg   string
	}{
		{"entitlement discharge declares a user on a resource macaroon", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.tpKey, f.resource(t, "entitled"), declared("username", "root"), tb(f))
		}, ErrUntrustedDeclaration, "outside the minting position or the identity discharge"},
		{"holder adds an identity caveat to a resource macaroon", func(t *testing.T, f *idFixture) macaroon.Slice {
			m := f.resource(t, "entitled")
			appendThirdParty(t, m, testIDP, &f.idpKey.Public, IdentityCondition)
			return f.dischargeWith(t, m, nil)
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"holder adds an identity caveat to a Basic login", func(t *testing.T, f *idFixture) macaroon.Slice {
			m := f.login(t, "bob", opAdminRead)
			appendThirdParty(t, m, testIDP, &f.idpKey.Public, IdentityCondition)
			return f.dischargeWith(t, m, nil)
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"holder adds a second identity caveat to an identity login", func(t *testing.T, f *idFixture) macaroon.Slice {
			m := f.idLogin(t, opAdminRead)
			appendThirdParty(t, m, testIDP, &f.idpKey.Public, IdentityCondition)
			return f.dischargeWith(t, m, nil)
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"holder appends a user to the identity discharge", func(t *testing.T, f *idFixture) macaroon.Slice {
			return f.dischargeWith(t, f.idLogin(t, opAdminRead), func(_ string, dm *bakery.Macaroon) {
				dm.M().AddFirstPartyCaveat([]byte(declared("username", "root")))
			})
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"holder appends groups to the identity discharge", func(t *testing.T, f *idFixture) macaroon.Slice {
			f.who = Identity{User: "alice"}
			return f.dischargeWith(t, f.idLogin(t, opAdminRead), func(_ string, dm *bakery.Macaroon) {
				dm.M().AddFirstPartyCaveat([]byte(declared("groups", "wheel")))
			})
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"holder appends a user to the primary", func(t *testing.T, f *idFixture) macaroon.Slice {
			m := f.idLogin(t, opAdminRead)
			m.M().AddFirstPartyCaveat([]byte(declared("username", "alice")))
			return f.dischargeWith(t, m, nil)
		}, ErrUntrustedDeclaration, "outside the minting position"},
		{"identity caveat relabelled to an unpinned location", func(t *testing.T, f *idFixture) macaroon.Slice {
			ms := f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
			ms[0] = withCaveatLocation(t, ms[0], identityCaveatIndex, "https://evil.example")
			return ms
		}, ErrUntrustedDeclaration, `addressed to "https://evil.example"`},
		{"identity caveat relabelled to the entitlement service", func(t *testing.T, f *idFixture) macaroon.Slice {
			ms := f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
			ms[0] = withCaveatLocation(t, ms[0], identityCaveatIndex, testTP)
			return ms
		}, ErrUntrustedDeclaration, "not a pinned identity provider"},
		{"provider declares two users", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("username", "root"), tb(f))
		}, ErrUntrustedDeclaration, "user declared twice"},
		{"provider declares the same user twice", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("username", "alice"), tb(f))
		}, ErrUntrustedDeclaration, "user declared twice"},
		{"provider declares groups twice", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("groups", "a"), declared("groups", "b"), tb(f))
		}, ErrUntrustedDeclaration, "groups declared twice"},
		{"declarations not closed", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"))
		}, ErrUntrustedDeclaration, "not closed by a time-before"},
		{"no user declared", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), tb(f))
		}, ErrDenied, "identity discharge declares no user"},
		{"groups but no user", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("groups", "admins"), tb(f))
		}, ErrDenied, "identity discharge declares no user"},
		{"user with a control character", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), "declared username ali\x1bce", tb(f))
		}, ErrDenied, "declared user: macaroon: user name contains a control character"},
		{"user with a DEL", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), "declared username ali\x7fce", tb(f))
		}, ErrDenied, "control character"},
		{"oversize user", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", strings.Repeat("a", 257)), tb(f))
		}, ErrDenied, "declared user: macaroon: user name must be 1..256 bytes"},
		{"user not UTF-8", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), "declared username \xff\xfe", tb(f))
		}, ErrDenied, "1..256 bytes of UTF-8"},
		{"too many groups", func(t *testing.T, f *idFixture) macaroon.Slice {
			gs := make([]string, MaxGroups+1)
			for i := range gs {
				gs[i] = fmt.Sprint("g", i)
			}
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("groups", strings.Join(gs, " ")), tb(f))
		}, ErrDenied, "more than 64 groups"},
		{"empty group", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("groups", "a  b"), tb(f))
		}, ErrDenied, "a group name is empty"},
		{"repeated group", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("groups", "a b a"), tb(f))
		}, ErrDenied, "a group is repeated"},
		{"unknown declared attribute", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), declared("username", "alice"), declared("role", "root"), tb(f))
		}, ErrDenied, `unsupported declared attribute "role"`},
		{"declared without a value", func(t *testing.T, f *idFixture) macaroon.Slice {
			return forge(t, f.idpKey, f.idLogin(t, opAdminRead), "declared username", tb(f))
		}, ErrDenied, "bad declared caveat"},
		{"entitlement key cannot discharge the identity caveat", func(t *testing.T, f *idFixture) macaroon.Slice {
			m := f.idLogin(t, opAdminRead)
			cav, payload := thirdPartyCaveat(t, m)
			if _, err := decryptCaveat(f.tpKey, payload); !errors.Is(err, ErrMalformed) {
				t.Fatalf("entitlement key decrypted the identity caveat: %v", err)
			}
			// Its own root key, declaring root: the signature fails.
			dm, _ := bakery.NewMacaroon(make([]byte, 32), cav.Id, "", bakery.LatestVersion, nil)
			dm.M().AddFirstPartyCaveat([]byte(declared("username", "root")))
			dm.M().AddFirstPartyCaveat([]byte(tb(f)))
			return macaroon.Slice{m.M(), bindTo(m, dm)}
		}, ErrDenied, "signature verification failed"},
		{"discharge of one identity login with another", func(t *testing.T, f *idFixture) macaroon.Slice {
			a := f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
			b := f.idLogin(t, opAdminRead)
			// Version 3 caveat ids are counters, equal in both: the
			// discharge is refused because it was made with a's caveat
			// root key and bound to a's signature.
			return macaroon.Slice{b.M(), a[1]}
		}, ErrDenied, "signature verification failed"},
		{"discharge of one identity login rebound to another", func(t *testing.T, f *idFixture) macaroon.Slice {
			var unbound *bakery.Macaroon
			f.dischargeWith(t, f.idLogin(t, opAdminRead), func(_ string, dm *bakery.Macaroon) { unbound = dm.Clone() })
			b := f.idLogin(t, opAdminRead)
			return macaroon.Slice{b.M(), bindTo(b, unbound)}
		}, ErrDenied, "signature verification failed"},
		{"two discharges of the identity caveat", func(t *testing.T, f *idFixture) macaroon.Slice {
			ms := f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)
			return append(ms, ms[1].Clone())
		}, ErrDenied, "signature verification failed"},
		{"identity login without its identity caveat", func(t *testing.T, f *idFixture) macaroon.Slice {
			// A Basic login with issued-at first cannot be minted; a
			// holder cannot move caveats. Mint the prefix by hand.
			m, err := f.svc.oven.NewMacaroon(context.Background(), bakery.LatestVersion, []checkers.Caveat{
				{Condition: checkers.Condition(condIssuedAt, f.clock.Now().Format(time.RFC3339Nano))},
				checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Hour))}, opAdminRead)
			if err != nil {
				t.Fatal(err)
			}
			return macaroon.Slice{m.M()}
		}, ErrDenied, "identity login without its identity caveat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newIDFixture(t)
			ms := tc.build(t, f)
			g, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opAdminRead)
			if g != nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("grant %+v, err = %v; want %v saying %q", g, err, tc.want, tc.msg)
			}
			if strings.Contains(f.logs.String(), "macaroon_identity_declared") {
				t.Fatal("refused macaroon logged as an identity declaration")
			}
		})
	}
}

// bindTo binds discharge dm to primary m.
func bindTo(m, dm *bakery.Macaroon) *macaroon.Macaroon {
	d := dm.M().Clone()
	d.Bind(m.M().Signature())
	return d
}

func TestIdentityDischargerRefuses(t *testing.T) {
	ctx := context.Background()
	f := newIDFixture(t)
	// The identity discharger discharges only the identity condition.
	cav, payload := thirdPartyCaveat(t, func() *bakery.Macaroon {
		m, err := f.svc.MintResource(ctx, testTP, "entitled", 0, opRegister)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}())
	// Encrypted to the entitlement key: the identity key cannot read it.
	if _, err := f.idDis.Discharge(ctx, nil, cav.Id, payload); !errors.Is(err, ErrMalformed) {
		t.Fatalf("caveat for another key: err = %v; want ErrMalformed", err)
	}
	m := f.idLogin(t, opAdminRead)
	appendThirdParty(t, m, testIDP, &f.idpKey.Public, "entitled")
	for _, tc := range []struct {
		name string
		who  Identity
		err  error
		cav  int // which third-party caveat of m
		want string
	}{
		{"other condition", Identity{User: "alice"}, nil, 1, `condition not satisfied: condition is not "is-authenticated-user"`},
		{"not authenticated", Identity{}, errors.New("no credentials"), 0, "identity not established: no credentials"},
		{"empty user", Identity{}, nil, 0, "identity not declarable: macaroon: user name must be 1..256 bytes"},
		{"control character", Identity{User: "a\nb"}, nil, 0, "control character"},
		{"group with a space", Identity{User: "a", Groups: []string{"x y"}}, nil, 0, "groups must be distinct names without spaces"},
		{"repeated group", Identity{User: "a", Groups: []string{"x", "x"}}, nil, 0, "groups must be distinct"},
		{"empty group", Identity{User: "a", Groups: []string{""}}, nil, 0, "groups must be distinct"},
	} {
		d, err := NewIdentityDischarger(f.idpKey, func(context.Context, *http.Request) (Identity, error) { return tc.who, tc.err })
		if err != nil {
			t.Fatal(err)
		}
		var cavs []macaroon.Caveat
		var payloads [][]byte
		bakery.DischargeAll(ctx, m, func(_ context.Context, c macaroon.Caveat, p []byte) (*bakery.Macaroon, error) {
			cavs, payloads = append(cavs, c), append(payloads, p)
			return bakery.NewMacaroon(make([]byte, 32), c.Id, "", bakery.LatestVersion, nil)
		})
		_, err = d.Discharge(ctx, nil, cavs[tc.cav].Id, payloads[tc.cav])
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want ErrDenied saying %q", tc.name, err, tc.want)
		}
	}
}

func TestIdentityOptionsMisuse(t *testing.T) {
	key, _ := GenerateKey()
	other, _ := GenerateKey()
	store := newSvcStore()
	for _, tc := range []struct {
		name string
		opts []Option
		msg  string
	}{
		{"http provider", []Option{WithIdentityProvider("http://login.example", &other.Public)}, "WithIdentityProvider: macaroon: third-party location not allowed"},
		{"nil key", []Option{WithIdentityProvider(testIDP, nil)}, "WithIdentityProvider: \"https://login.example\": nil public key"},
		{"twice", []Option{WithIdentityProvider(testIDP, &other.Public), WithIdentityProvider(testIDP, &key.Public)}, "given twice"},
		{"also a third party", []Option{WithThirdParty(testIDP, &other.Public), WithIdentityProvider(testIDP, &other.Public)}, "also pinned with WithThirdParty"},
		{"query in location", []Option{WithIdentityProvider(testIDP+"?x=1", &other.Public)}, "not a plain https URL"},
	} {
		if _, err := NewService("l", key, store, tc.opts...); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v; want ErrInvalidOption saying %q", tc.name, err, tc.msg)
		}
	}
	identify := func(context.Context, *http.Request) (Identity, error) { return Identity{User: "a"}, nil }
	for _, tc := range []struct {
		name     string
		key      *bakery.KeyPair
		identify IdentifyFunc
		opts     []Option
		want     error
		msg      string
	}{
		{"nil identify", key, nil, nil, ErrInvalidOption, "NewIdentityDischarger: nil IdentifyFunc"},
		{"nil key", nil, identify, nil, ErrInvalidKey, "key"},
		{"provider to discharger", key, identify, []Option{WithIdentityProvider(testIDP, &other.Public)}, ErrInvalidOption, "WithIdentityProvider does not apply to NewDischarger"},
		{"zero ttl", key, identify, []Option{WithDischargeTTL(0)}, ErrInvalidOption, "WithDischargeTTL"},
	} {
		if _, err := NewIdentityDischarger(tc.key, tc.identify, tc.opts...); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v; want %v saying %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if _, err := NewDischargeClient([]string{testIDP}, WithIdentityProvider(testIDP, &other.Public)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("provider to NewDischargeClient: err = %v", err)
	}
	f := newIDFixture(t)
	ctx := context.Background()
	if _, err := f.svc.MintIdentityLogin(ctx, testTP, 0, opAdminRead); !errors.Is(err, ErrLocationNotAllowed) {
		t.Errorf("identity login addressed to the entitlement service: err = %v", err)
	}
	if _, err := f.svc.MintIdentityLogin(ctx, "https://evil.example", 0, opAdminRead); !errors.Is(err, ErrLocationNotAllowed) {
		t.Errorf("identity login addressed to an unpinned location: err = %v", err)
	}
	if _, err := f.svc.MintResource(ctx, testIDP, IdentityCondition, 0, opRegister); !errors.Is(err, ErrLocationNotAllowed) {
		t.Errorf("resource macaroon addressed to the identity provider: err = %v", err)
	}
	if _, err := f.svc.MintIdentityLogin(ctx, testIDP, -time.Second, opAdminRead); err == nil {
		t.Error("negative ttl accepted")
	}
	if _, err := f.svc.MintIdentityLogin(ctx, testIDP, 0); err == nil {
		t.Error("no operation accepted")
	}
}

// TestIdentityDischargeOverHTTPS runs the identity discharger behind a real
// TLS server that authenticates holders with a bearer secret, the way the
// example identity service does.
func TestIdentityDischargeOverHTTPS(t *testing.T) {
	ctx := context.Background()
	f := newIDFixture(t)
	secret := []byte("s3cret-bearer-for-alice")
	d, err := NewIdentityDischarger(f.idpKey, func(_ context.Context, r *http.Request) (Identity, error) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !hmac.Equal([]byte(got), secret) {
			return Identity{}, errors.New("bad bearer secret")
		}
		return Identity{User: "alice", Groups: []string{"admins"}}, nil
	}, WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(d)
	t.Cleanup(srv.Close)
	svc, err := NewService("https://lpsec.example", f.svc.key, f.store, WithIdentityProvider(srv.URL, &f.idpKey.Public), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	client := func(tok string) *DischargeClient {
		hc := *srv.Client() // a copy: srv.Client() is shared
		next := hc.Transport
		hc.Transport = roundTrip(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
			return next.RoundTrip(r)
		})
		dc, err := NewDischargeClient([]string{srv.URL}, WithHTTPClient(&hc))
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	m, err := svc.MintIdentityLogin(ctx, srv.URL, 0, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client("wrong").DischargeAll(ctx, m); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("wrong secret: err = %v; want ErrDenied with HTTP 403", err)
	}
	ms, err := client(string(secret)).DischargeAll(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Verify(ctx, []macaroon.Slice{ms}, opAdminRead)
	if err != nil || g.User != "alice" || fmt.Sprint(g.Groups) != "[admins]" {
		t.Fatalf("grant %+v, err %v", g, err)
	}
	// Through the wire format too.
	enc, err := EncodeSlice(ms)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Macaroons", enc)
	if g, err := svc.VerifyRequest(ctx, r, opAdminRead); err != nil || g.User != "alice" {
		t.Fatalf("VerifyRequest: grant %+v, err %v", g, err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzIdentityDeclaration feeds arbitrary declared caveats to the identity
// discharge's parser: no panic, and whatever it accepts is a valid user or
// a valid group list.
func FuzzIdentityDeclaration(f *testing.F) {
	for _, s := range []string{"username alice", "groups a b c", "username ", "groups ", "username a\x00b", "groups a  b", "role x",
		"username " + strings.Repeat("x", 300), "groups " + strings.Repeat("g ", 70), "username \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		var c caveatResult
		if err := c.declare(arg); err != nil {
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("error %v does not match ErrDenied", err)
			}
			return
		}
		if c.user != "" && checkUser(c.user) != nil {
			t.Fatalf("accepted bad user %q", c.user)
		}
		if len(c.groups) > MaxGroups {
			t.Fatalf("accepted %d groups", len(c.groups))
		}
		for _, g := range c.groups {
			if checkUser(g) != nil || strings.Contains(g, " ") {
				t.Fatalf("accepted bad group %q", g)
			}
		}
		if err := c.declare(arg); !errors.Is(err, ErrUntrustedDeclaration) {
			t.Fatalf("second declaration: err = %v; want ErrUntrustedDeclaration", err)
		}
	})
}

// The bakery's own httpbakery client (a peer this package did not write)
// gets an identity login discharged by NewIdentityDischarger, and the
// bakery's checker reads the declared user from the discharge as lpsec
// does.
func TestIdentityDischargeWithHTTPBakeryClient(t *testing.T) {
	ctx := context.Background()
	f := newIDFixture(t)
	srv := httptest.NewTLSServer(f.idDis)
	t.Cleanup(srv.Close)
	svc, err := NewService("https://lpsec.example", f.svc.key, f.store, WithIdentityProvider(srv.URL, &f.idpKey.Public), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.MintIdentityLogin(ctx, srv.URL, 0, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	c := httpbakery.NewClient()
	c.Client = srv.Client()
	c.Client.Jar, _ = cookiejar.New(nil)
	ms, err := c.DischargeAll(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Verify(ctx, []macaroon.Slice{ms}, opAdminRead)
	if err != nil || g.User != "alice" {
		t.Fatalf("grant %+v, err %v", g, err)
	}
	// The bakery infers the same declarations from the discharge.
	got := checkers.InferDeclared(nil, ms[1:])
	if got["username"] != "alice" || got["groups"] != "admins ops" {
		t.Fatalf("bakery infers %v", got)
	}
}

// FuzzVerifyIdentityHeader mutates encoded identity logins: no panic, every
// error is a sentinel, and a grant's user is only ever the one the pinned
// identity provider declared (the fuzzer cannot make a provider signature,
// so any other user means a declaration was taken from elsewhere).
func FuzzVerifyIdentityHeader(f *testing.F) {
	fx := newIDFixture(f)
	seed := func(ms macaroon.Slice) {
		enc, err := EncodeSlice(ms)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	seed(fx.dischargeWith(f, fx.idLogin(f, opAdminRead), nil))
	seed(fx.dischargeWith(f, fx.idLogin(f, opAdminRead), func(_ string, dm *bakery.Macaroon) {
		dm.M().AddFirstPartyCaveat([]byte("declared username root"))
	}))
	seed(forge(f, fx.tpKey, fx.resource(f, "entitled"), "declared username root"))
	seed(macaroon.Slice{fx.idLogin(f, opAdminRead).M()})
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Macaroons", header)
		g, err := fx.svc.VerifyRequest(context.Background(), r, opAdminRead)
		if err == nil {
			if g.User != "alice" || fmt.Sprint(g.Groups) != "[admins ops]" {
				t.Fatalf("grant for %q %v: not what the identity provider declared", g.User, g.Groups)
			}
			return
		}
		for _, want := range []error{ErrMissing, ErrMalformed, ErrExpired, ErrDenied, ErrDischargeRequired, ErrUnknownRootKey, ErrRevoked, ErrUserRefused} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("error %v matches no sentinel", err)
	})
}

// WithCheckIdentity: a provider trusted to name the admins of one list
// cannot declare a name from another source's namespace; the check sees
// the provider and groups, runs only for identity logins, and passes
// ErrUnavailable on.
func TestCheckIdentity(t *testing.T) {
	ctx := context.Background()
	f := newIDFixture(t)
	f.users["https://oidc.example#root"] = true // WithCheckUser would let it through
	var calls []string
	var down bool
	svc, err := NewService("https://lpsec.example", f.svc.key, f.store, WithIdentityProvider(testIDP, &f.idpKey.Public),
		WithCheckUser(func(_ context.Context, u string) error {
			if !f.users[u] {
				return errors.New("not an admin")
			}
			return nil
		}),
		WithCheckIdentity(func(_ context.Context, provider string, id Identity) error {
			calls = append(calls, fmt.Sprint(provider, " ", id.User, " ", id.Groups))
			if down {
				return fmt.Errorf("directory: %w", ErrUnavailable)
			}
			if strings.Contains(id.User, "#") {
				return errors.New("names with # are OpenID Connect users")
			}
			return nil
		}), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	g, err := svc.Verify(ctx, []macaroon.Slice{f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)}, opAdminRead)
	if err != nil || g.User != "alice" || g.IdentityProvider != testIDP {
		t.Fatalf("grant %+v, err %v", g, err)
	}
	f.who = Identity{User: "https://oidc.example#root"}
	_, err = svc.Verify(ctx, []macaroon.Slice{f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)}, opAdminRead)
	if !errors.Is(err, ErrUserRefused) || !strings.Contains(err.Error(), `"https://oidc.example#root" from "https://login.example": names with # are OpenID Connect users`) {
		t.Fatalf("declared OIDC-namespace user: err = %v; want ErrUserRefused", err)
	}
	down = true
	f.who = Identity{User: "alice"}
	if _, err := svc.Verify(ctx, []macaroon.Slice{f.dischargeWith(t, f.idLogin(t, opAdminRead), nil)}, opAdminRead); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUserRefused) {
		t.Fatalf("directory down: err = %v; want ErrUnavailable only", err)
	}
	// A Basic login never reaches the identity check.
	n := len(calls)
	if g, err := svc.Verify(ctx, []macaroon.Slice{{f.login(t, "alice", opAdminRead).M()}}, opAdminRead); err != nil || g.IdentityProvider != "" {
		t.Fatalf("Basic login: grant %+v, err %v", g, err)
	}
	if len(calls) != n || calls[0] != "https://login.example alice [admins ops]" {
		t.Fatalf("identity check calls %q", calls)
	}
	if _, err := NewService("l", f.svc.key, f.store, WithCheckIdentity(nil)); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithCheckIdentity: nil check") {
		t.Fatalf("nil check: err = %v", err)
	}
	if _, err := NewDischarger(f.idpKey, func(context.Context, *http.Request, string) error { return nil },
		WithCheckIdentity(func(context.Context, string, Identity) error { return nil })); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithCheckIdentity to NewDischarger: err = %v", err)
	}
}
