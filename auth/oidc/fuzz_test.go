package oidc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds hostile JWTs to the token-parsing entry point: huge
// headers, deeply nested JSON, many segments, wrong types. It must never
// panic, and every refusal must be one of the package's sentinels.
func FuzzVerify(f *testing.F) {
	o := startOwnIssuer(f)
	now := time.Now()
	v := o.verifier(f, WithAdminClaim("groups", "lpsec-admins"), WithClock(func() time.Time { return now }),
		WithKeyRefresh(time.Hour, 2*time.Hour))
	good := o.sign(f, o.claims(now))
	seg := segments(good)
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	for _, s := range []string{
		good,
		seg[0] + "." + seg[1] + ".",
		b64(`{"alg":"none"}`) + "." + seg[1] + ".",
		b64(`{"alg":"ES256","kid":"`+strings.Repeat("k", 3000)+`"}`) + "." + seg[1] + "." + seg[2],
		b64(`{"alg":"ES256","x":`+deep+`}`) + "." + seg[1] + "." + seg[2],
		seg[0] + "." + b64(`{"iss":`+deep+`}`) + "." + seg[2],
		strings.Repeat(".", 1000),
		good + "." + good,
		b64(`{"alg":"ES256","jwk":{"kty":"EC"}}`) + "." + seg[1] + "." + seg[2],
		b64(`{"alg":"ES256","b64":false,"crit":["b64"]}`) + "." + seg[1] + "." + seg[2],
		b64(`{"alg":"ES256"}`) + "." + b64(`{"exp":1e308,"iat":-1e308}`) + "." + seg[2],
		"\x00\xff.\x00.\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(ctx, raw)
		if err == nil {
			if id == nil || id.User == "" {
				t.Fatalf("accepted without identity: %q", raw)
			}
			return
		}
		if reason(err) == "other" && !errors.Is(err, ErrProviderUnavailable) {
			t.Fatalf("refusal %v is not a sentinel", err)
		}
	})
}
