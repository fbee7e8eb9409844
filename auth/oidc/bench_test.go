package oidc

import (
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/lpsec/lpsec/internal/oidcop"
)

// BenchmarkVerifyIDToken verifies the same ID token, issued by the real
// provider (RS256, 2048-bit key), with keys cached: lpsec's Verifier
// ("lpsec") against go-oidc's own verifier with its RemoteKeySet
// ("baseline"). Target: lpsec/baseline <= 1.2. Run with
// bench/ratio.sh ./auth/oidc/ BenchmarkVerifyIDToken to print the ratio.
func BenchmarkVerifyIDToken(b *testing.B) {
	p := oidcop.Start(b)
	raw := p.IDToken(b, oidcop.WebClientID, oidcop.AdminSubject, "")
	b.Run("lpsec", func(b *testing.B) {
		v, err := NewVerifier(ctx, p.Issuer, oidcop.WebClientID, WithHTTPClient(p.Client()),
			WithAdminClaim(oidcop.GroupsClaim, oidcop.AdminGroup))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		cctx := gooidc.ClientContext(ctx, p.Client())
		provider, err := gooidc.NewProvider(cctx, p.Issuer)
		if err != nil {
			b.Fatal(err)
		}
		v := provider.VerifierContext(cctx, &gooidc.Config{ClientID: oidcop.WebClientID})
		if _, err := v.Verify(cctx, raw); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(cctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
