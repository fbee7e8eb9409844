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
	c := bakery.NewChecker(bakery.CheckerParams{Checker: checkers.New(nil), MacaroonVerifier: oven})
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
			cavs := []checkers.Caveat{checkers.DeclaredCaveat("username", "alice"), checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Hour))}
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
