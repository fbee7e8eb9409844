package macaroon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
)

// The baselines are the raw bakery doing the same work on the same inputs,
// with the same root-key store.

func rawChecker(f *fixture) (*bakery.Checker, context.Context) {
	oven := bakery.NewOven(bakery.OvenParams{
		Namespace:          checkers.New(nil).Namespace(),
		RootKeyStoreForOps: func([]bakery.Op) bakery.RootKeyStore { return f.store },
	})
	// The raw bakery does not know the issue time MintLogin writes;
	// parsing it is the work it stands for.
	fpc := checkers.New(nil)
	fpc.Register(condIssuedAt, checkers.StdNamespace, func(_ context.Context, _, arg string) error {
		_, err := time.Parse(time.RFC3339Nano, arg)
		return err
	})
	c := bakery.NewChecker(bakery.CheckerParams{Checker: fpc, MacaroonVerifier: oven})
	return c, checkers.ContextWithClock(context.Background(), f.clock)
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	cases := map[string]struct {
		ms Slice
		op bakery.Op
	}{
		"first-party": {Slice{f.login(b, "alice", opAdminRead).M()}, opAdminRead},
		"discharged":  {f.discharge(b, f.resource(b, "entitled")), opRegister},
	}
	for name, c := range cases {
		mss := []Slice{c.ms}
		b.Run(name+"/lpsec", func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.svc.Verify(ctx, mss, c.op); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/baseline", func(b *testing.B) {
			checker, ctx := rawChecker(f)
			for b.Loop() {
				if _, err := checker.Auth(c.ms).Allow(ctx, c.op); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMint(b *testing.B) {
	f := newFixture(b)
	// Minting logs an event; measure it formatted, not accumulated.
	f.svc.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	b.Run("login/lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.svc.MintLogin(ctx, "alice", time.Hour, opAdminRead); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("login/baseline", func(b *testing.B) {
		for b.Loop() {
			now := f.clock.Now()
			cavs := []checkers.Caveat{checkers.DeclaredCaveat("username", "alice"), {Condition: condIssuedAt + " " + now.UTC().Format(time.RFC3339Nano)}, checkers.TimeBeforeCaveat(now.Add(time.Hour))}
			if _, err := f.svc.oven.NewMacaroon(ctx, bakery.LatestVersion, cavs, opAdminRead); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resource/lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.svc.MintResource(ctx, testTP, "entitled", time.Hour, opRegister); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resource/baseline", func(b *testing.B) {
		for b.Loop() {
			cavs := []checkers.Caveat{checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Hour)), {Location: testTP, Condition: "entitled"}}
			if _, err := f.svc.oven.NewMacaroon(ctx, bakery.LatestVersion, cavs, opRegister); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDischarge(b *testing.B) {
	f := newFixture(b)
	cav, payload := thirdPartyCaveat(b, f.resource(b, "entitled"))
	ctx := context.Background()
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.dis.Discharge(ctx, nil, cav.Id, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		checker := bakery.ThirdPartyCaveatCheckerFunc(func(context.Context, *bakery.ThirdPartyCaveatInfo) ([]checkers.Caveat, error) {
			return []checkers.Caveat{checkers.TimeBeforeCaveat(f.clock.Now().Add(DefaultDischargeTTL))}, nil
		})
		for b.Loop() {
			if _, err := bakery.Discharge(ctx, bakery.DischargeParams{Id: cav.Id, Caveat: payload, Key: f.tpKey, Checker: checker}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifySession: what sessions that end cost a login
// verification. baseline is the same Service without WithRevocations and
// WithCheckUser; sessions adds a memory store holding 10,000 revoked ids
// (and one user cut-off) and a map-lookup user check.
func BenchmarkVerifySession(b *testing.B) {
	f := newFixture(b)
	mss := []Slice{{f.login(b, "alice", opAdminRead).M()}}
	b.Run("baseline", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := f.svc.Verify(ctx, mss, opAdminRead); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sessions", func(b *testing.B) {
		store, err := NewMemoryRevocationStore(WithClock(f.clock.Now))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		exp := f.clock.Now().Add(time.Hour)
		for i := range 10000 {
			id := macaroonID([]byte{byte(i), byte(i >> 8), 'x'})
			if err := store.Revoke(ctx, Revocation{ID: id, Expires: exp}); err != nil {
				b.Fatal(err)
			}
		}
		if err := store.Revoke(ctx, Revocation{User: "bob", Before: f.clock.Now(), Expires: exp}); err != nil {
			b.Fatal(err)
		}
		admins := map[string]bool{"alice": true}
		svc, err := NewService("https://lpsec.example", f.svc.key, f.store, WithClock(f.clock.Now), WithRevocations(store),
			WithCheckUser(func(_ context.Context, u string) error {
				if !admins[u] {
					return io.EOF
				}
				return nil
			}))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := svc.Verify(ctx, mss, opAdminRead); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyIdentityLogin: an identity login (primary + the identity
// provider's discharge, with its event formatted) against the baseline of
// a discharged resource macaroon of the same shape, in the same run.
func BenchmarkVerifyIdentityLogin(b *testing.B) {
	f := newIDFixture(b)
	f.svc.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ms   Slice
		op   bakery.Op
	}{
		{"identity", f.dischargeWith(b, f.idLogin(b, opAdminRead), nil), opAdminRead},
		{"baseline-discharged-resource", f.discharge(b, f.resource(b, "entitled")), opRegister},
	} {
		mss := []Slice{c.ms}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.svc.Verify(ctx, mss, c.op); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
