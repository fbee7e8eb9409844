package oidc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/lpsec/lpsec/internal/oidcop"
)

var ctx = context.Background()

func zitadelVerifier(t *testing.T, p *oidcop.Provider, opts ...Option) *Verifier {
	t.Helper()
	opts = append([]Option{WithHTTPClient(p.Client()), WithAdminClaim(oidcop.GroupsClaim, oidcop.AdminGroup)}, opts...)
	v, err := NewVerifier(ctx, p.Issuer, oidcop.WebClientID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestZitadelLogin: an ID token the real provider issues through the
// authorization code flow is accepted, with issuer#subject as the user.
func TestZitadelLogin(t *testing.T) {
	p := oidcop.Start(t)
	var logs bytes.Buffer
	v := zitadelVerifier(t, p, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	raw := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "nonce-1")
	id, err := v.VerifyNonce(ctx, raw, "nonce-1")
	if err != nil {
		t.Fatalf("VerifyNonce: %v", err)
	}
	if want := p.Issuer + "#" + oidcop.AdminSubject; id.User != want || id.Subject != oidcop.AdminSubject || id.Issuer != p.Issuer {
		t.Errorf("identity %+v, want user %q", id, want)
	}
	if _, err := v.VerifyNonce(ctx, raw, "nonce-2"); !errors.Is(err, ErrNonce) {
		t.Errorf("wrong nonce: %v, want ErrNonce", err)
	}
	if _, err := v.VerifyNonce(ctx, raw, ""); !errors.Is(err, ErrNonce) {
		t.Errorf("empty nonce: %v, want ErrNonce", err)
	}
	if !strings.Contains(logs.String(), `"event":"sso_login"`) || !strings.Contains(logs.String(), `"reason":"nonce"`) {
		t.Errorf("events: %s", logs.String())
	}
	if strings.Contains(logs.String(), segments(raw)[1]) || strings.Contains(logs.String(), segments(raw)[2]) {
		t.Error("a log record holds the token")
	}
}

// TestZitadelRefusals: tokens from the real provider, refused for what is
// wrong with them, or altered the way an attacker would.
func TestZitadelRefusals(t *testing.T) {
	p := oidcop.Start(t)
	clock := &fixedClock{t: time.Now()}
	v := zitadelVerifier(t, p, WithClock(clock.now))
	admin := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	seg := segments(admin)

	var hdr map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(seg[0])
	json.Unmarshal(hb, &hdr)
	withHeader := func(change map[string]any) string {
		h := map[string]any{}
		for k, v := range hdr {
			h[k] = v
		}
		for k, v := range change {
			h[k] = v
		}
		b, _ := json.Marshal(h)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	var payload map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(seg[1])
	json.Unmarshal(pb, &payload)
	payload["sub"] = oidcop.OtherSubject
	tampered, _ := json.Marshal(payload)

	// HS256 keyed with the provider's public key, as published in its JWKS
	// (the "algorithm confusion" attack on verifiers that let the token
	// choose how the key is used).
	resp, err := p.Client().Get(p.Issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	der, _ := x509.MarshalPKIXPublicKey(set.Keys[0].Key.(*rsa.PublicKey))
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsInput := withHeader(map[string]any{"alg": "HS256"}) + "." + seg[1]
	mac := hmac.New(sha256.New, pemKey)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	cases := []struct {
		name, token string
		want        error
	}{
		{"wrong audience (issued to another client)", p.IDToken(t, oidcop.OtherClientID, oidcop.AdminSubject, ""), ErrAudience},
		{"missing admin claim value", p.IDToken(t, oidcop.WebClientID, oidcop.OtherSubject, ""), ErrNotAdmin},
		{"tampered payload (subject changed)", seg[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + seg[2], ErrSignature},
		{"tampered signature", seg[0] + "." + seg[1] + "." + seg[2][:len(seg[2])-4] + "AAAA", ErrSignature},
		{"unknown kid", withHeader(map[string]any{"kid": "attacker-key"}) + "." + seg[1] + "." + seg[2], ErrUnknownKey},
		{"alg none", withHeader(map[string]any{"alg": "none"}) + "." + seg[1] + ".", ErrAlgorithm},
		{"alg None", withHeader(map[string]any{"alg": "None"}) + "." + seg[1] + ".", ErrAlgorithm},
		{"HS256 keyed with the public key", hs256, ErrAlgorithm},
		{"critical header", withHeader(map[string]any{"crit": []string{"exp"}}) + "." + seg[1] + "." + seg[2], ErrMalformed},
		{"two segments", seg[0] + "." + seg[1], ErrMalformed},
		{"JWE (five segments)", admin + ".x.y", ErrMalformed},
		{"JSON serialization", `{"payload":"` + seg[1] + `"}`, ErrMalformed},
		{"empty", "", ErrMalformed},
		{"too large", admin + strings.Repeat("A", DefaultMaxTokenSize), ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(ctx, c.token)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
	// The real token itself is fine, then expires with time; a token from
	// the future (a clock behind the provider's) is not yet valid.
	if _, err := v.Verify(ctx, admin); err != nil {
		t.Fatalf("the untouched token: %v", err)
	}
	clock.add(-DefaultClockSkew - time.Minute)
	if _, err := v.Verify(ctx, admin); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("issued in the future: %v, want ErrNotYetValid", err)
	}
	// zitadel's ID tokens last an hour from their issue time, which is
	// later than the clock's start (by the token request, and by up to a
	// second more when iat crosses a second boundary): a second beyond
	// exp plus the skew, counted from the clock's start, could still be
	// before it. A minute more leaves no doubt and still tests expiry.
	clock.add(DefaultClockSkew + time.Minute + time.Hour + DefaultClockSkew + time.Minute)
	if _, err := v.Verify(ctx, admin); !errors.Is(err, ErrExpired) {
		t.Errorf("an hour later: %v, want ErrExpired", err)
	}
}

// TestZitadelAnotherProvider: a token from another provider (same
// library, its own keys and issuer) is refused.
func TestZitadelAnotherProvider(t *testing.T) {
	p, q := oidcop.Start(t), oidcop.Start(t)
	q.RotateKey(false) // a key ID p does not have
	v := zitadelVerifier(t, p)
	if _, err := v.Verify(ctx, q.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("another provider's token: %v, want ErrUnknownKey", err)
	}
}

// TestZitadelKeyRotation: the provider rotates its signing key; the
// verifier fetches the new key set once, on the first token with the new
// key ID, and forged key IDs cause no more than one fetch per interval.
func TestZitadelKeyRotation(t *testing.T) {
	p := oidcop.Start(t)
	clock := &fixedClock{t: time.Now()}
	v := zitadelVerifier(t, p, WithClock(clock.now))
	old := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if v.keys.fetches != 1 {
		t.Fatalf("%d key set fetches for the first token, want 1", v.keys.fetches)
	}
	p.RotateKey(true)
	clock.add(DefaultKeyRefreshInterval)
	fresh := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, fresh); err != nil {
			t.Fatalf("token signed with the new key: %v", err)
		}
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("token signed with the old key, still published: %v", err)
	}
	if v.keys.fetches != 2 {
		t.Fatalf("%d key set fetches after rotation, want 2", v.keys.fetches)
	}
	seg := segments(fresh)
	for i := 0; i < 20; i++ {
		forged := b64(`{"alg":"RS256","kid":"forged-`+string(rune('a'+i))+`"}`) + "." + seg[1] + "." + seg[2]
		if _, err := v.Verify(ctx, forged); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("forged kid: %v, want ErrUnknownKey", err)
		}
	}
	if v.keys.fetches != 2 {
		t.Errorf("20 forged key IDs within the refresh interval made %d fetches, want none", v.keys.fetches-2)
	}
	// Rotation that drops the old key: after the interval, the old
	// key's tokens are refused once the set is refetched.
	p.RotateKey(false)
	clock.add(DefaultKeyRefreshInterval)
	newest := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	if _, err := v.Verify(ctx, newest); err != nil {
		t.Fatalf("token after the second rotation: %v", err)
	}
	if _, err := v.Verify(ctx, old); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token of a withdrawn key: %v, want ErrUnknownKey", err)
	}
}

// TestZitadelProviderDown: with the provider down, cached keys still
// verify until they are older than the maximum age; a token with a new
// key ID fails closed at once, and every token fails closed after.
func TestZitadelProviderDown(t *testing.T) {
	p := oidcop.Start(t)
	clock := &fixedClock{t: time.Now()}
	v := zitadelVerifier(t, p, WithClock(clock.now), WithKeyRefresh(time.Second, 10*time.Minute))
	tok := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	p.RotateKey(true)
	rotated := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	p.SetDown(true)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("cached key, provider down: %v", err)
	}
	clock.add(2 * time.Second)
	if _, err := v.Verify(ctx, rotated); !errors.Is(err, ErrProviderUnavailable) {
		t.Fatalf("new key ID, provider down: %v, want ErrProviderUnavailable", err)
	}
	clock.add(10 * time.Minute)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrProviderUnavailable) {
		t.Fatalf("cache older than its maximum age, provider down: %v, want ErrProviderUnavailable", err)
	}
	p.SetDown(false)
	clock.add(2 * time.Second)
	if _, err := v.Verify(ctx, rotated); err != nil {
		t.Fatalf("provider back: %v", err)
	}
}

// TestOwnKeyRefusals: tokens a provider would not issue, signed with a
// key the verifier trusts, so that only the claim check can refuse them.
func TestOwnKeyRefusals(t *testing.T) {
	o := startOwnIssuer(t)
	now := time.Now()
	v := o.verifier(t, WithAdminClaim("groups", "lpsec-admins"), WithClock(func() time.Time { return now }))
	with := func(change map[string]any) map[string]any {
		c := o.claims(now)
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"wrong issuer", with(map[string]any{"iss": "https://evil.example"}), ErrIssuer},
		{"issuer with a trailing slash", with(map[string]any{"iss": o.url + "/"}), ErrIssuer},
		{"wrong audience", with(map[string]any{"aud": "other"}), ErrAudience},
		{"audience list without the client", with(map[string]any{"aud": []string{"a", "b"}}), ErrAudience},
		{"several audiences, no azp", with(map[string]any{"aud": []string{"lpsec", "other"}}), ErrAudience},
		{"several audiences, azp another client", with(map[string]any{"aud": []string{"lpsec", "other"}, "azp": "other"}), ErrAudience},
		{"azp another client", with(map[string]any{"azp": "other"}), ErrAudience},
		{"no audience", with(map[string]any{"aud": nil}), ErrAudience},
		{"expired beyond the skew", with(map[string]any{"exp": now.Add(-DefaultClockSkew - time.Second).Unix()}), ErrExpired},
		{"no exp", with(map[string]any{"exp": nil}), ErrExpired},
		{"exp negative", with(map[string]any{"exp": -1}), ErrExpired},
		{"exp a string", with(map[string]any{"exp": "tomorrow"}), ErrMalformed},
		{"iat in the future beyond the skew", with(map[string]any{"iat": now.Add(DefaultClockSkew + time.Second).Unix()}), ErrNotYetValid},
		{"no iat", with(map[string]any{"iat": nil}), ErrNotYetValid},
		{"nbf in the future", with(map[string]any{"nbf": now.Add(DefaultClockSkew + time.Second).Unix()}), ErrNotYetValid},
		{"no subject", with(map[string]any{"sub": nil}), ErrNoIdentity},
		{"subject with a space", with(map[string]any{"sub": "alice admin"}), ErrNoIdentity},
		{"subject too long", with(map[string]any{"sub": strings.Repeat("a", 256)}), ErrNoIdentity},
		{"groups without the admin value", with(map[string]any{"groups": []string{"staff"}}), ErrNotAdmin},
		{"groups a string, other value", with(map[string]any{"groups": "lpsec-admins-not"}), ErrNotAdmin},
		{"groups an object", with(map[string]any{"groups": map[string]any{"lpsec-admins": true}}), ErrNotAdmin},
		{"no groups", with(map[string]any{"groups": nil}), ErrNotAdmin},
		{"sub a number", with(map[string]any{"sub": 42}), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := v.Verify(ctx, o.sign(t, c.claims)); !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
	accepted := []struct {
		name   string
		claims map[string]any
	}{
		{"valid", o.claims(now)},
		{"expired within the skew", with(map[string]any{"exp": now.Add(-DefaultClockSkew + time.Second).Unix()})},
		{"several audiences, azp the client", with(map[string]any{"aud": []string{"lpsec", "other"}, "azp": "lpsec"})},
		{"groups a string equal to the value", with(map[string]any{"groups": "lpsec-admins"})},
	}
	for _, c := range accepted {
		id, err := v.Verify(ctx, o.sign(t, c.claims))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if id.User != o.url+"#alice-42" {
			t.Errorf("%s: user %q, want issuer#subject, never the name", c.name, id.User)
		}
	}
}

// TestIdentityRules: the subject and email allow-lists and the email identity.
func TestIdentityRules(t *testing.T) {
	o := startOwnIssuer(t)
	now := time.Now()
	claims := func(email string, verified any) map[string]any {
		c := o.claims(now)
		delete(c, "groups")
		c["email"], c["email_verified"] = email, verified
		return c
	}
	bySub := o.verifier(t, WithAdminSubjects("alice-42"))
	if id, err := bySub.Verify(ctx, o.sign(t, claims("a@b", true))); err != nil || id.User != o.url+"#alice-42" {
		t.Errorf("subject allow-list: %+v, %v", id, err)
	}
	other := o.verifier(t, WithAdminSubjects("bob"))
	if _, err := other.Verify(ctx, o.sign(t, claims("a@b", true))); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("subject not listed: %v", err)
	}
	byEmail := o.verifier(t, WithAdminEmails("alice@example.org"))
	if id, err := byEmail.Verify(ctx, o.sign(t, claims("Alice@Example.org", true))); err != nil || id.User != "Alice@Example.org" {
		t.Errorf("email allow-list: %+v, %v", id, err)
	}
	if id, err := byEmail.Verify(ctx, o.sign(t, claims("alice@example.org", "true"))); err != nil || id.Email == "" {
		t.Errorf(`email_verified "true": %+v, %v`, id, err)
	}
	for _, verified := range []any{false, "false", nil, 1} {
		if _, err := byEmail.Verify(ctx, o.sign(t, claims("alice@example.org", verified))); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("email_verified %v: %v, want ErrNoIdentity", verified, err)
		}
	}
	if _, err := byEmail.Verify(ctx, o.sign(t, claims("mallory@example.org", true))); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("email not listed: %v", err)
	}
	emailID := o.verifier(t, WithEmailIdentity(), WithAdminSubjects("alice-42"))
	if id, err := emailID.Verify(ctx, o.sign(t, claims("alice@example.org", true))); err != nil || id.User != "alice@example.org" {
		t.Errorf("email identity: %+v, %v", id, err)
	}
}

func TestDiscovery(t *testing.T) {
	o := startOwnIssuer(t)
	admin := WithAdminSubjects("x")
	c := WithHTTPClient(o.srv.Client())
	for name, issuer := range map[string]string{
		"http issuer":       strings.Replace(o.url, "https://", "http://", 1),
		"issuer mismatch":   o.url + "/",
		"no provider there": o.url + "/nothing",
	} {
		if _, err := NewVerifier(ctx, issuer, "lpsec", c, admin); !errors.Is(err, ErrDiscovery) {
			t.Errorf("%s: %v, want ErrDiscovery", name, err)
		}
	}
	// A document of more than 256 KiB is not read whole.
	big := startOwnIssuer(t)
	big.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"issuer":"`+big.url+`","x":"`)
		w.Write(bytes.Repeat([]byte("a"), maxDocumentBytes))
		io.WriteString(w, `"}`)
	})
	if _, err := NewVerifier(ctx, big.url, "lpsec", WithHTTPClient(big.srv.Client()), admin); !errors.Is(err, ErrDiscovery) {
		t.Errorf("huge document: %v, want ErrDiscovery", err)
	}
}

func TestOptions(t *testing.T) {
	o := startOwnIssuer(t)
	c := WithHTTPClient(o.srv.Client())
	admin := WithAdminSubjects("x")
	cases := map[string][]Option{
		"WithHTTPClient":    {WithHTTPClient(nil), admin},
		"WithLogger":        {c, admin, WithLogger(nil)},
		"WithClock":         {c, admin, WithClock(nil)},
		"WithClockSkew":     {c, admin, WithClockSkew(MaxClockSkew + 1)},
		"WithMaxTokenSize":  {c, admin, WithMaxTokenSize(0)},
		"WithAlgorithms":    {c, admin, WithAlgorithms("HS256")},
		"WithKeyRefresh":    {c, admin, WithKeyRefresh(0, time.Hour)},
		"WithAdminClaim":    {c, WithAdminClaim("groups", "")},
		"WithAdminSubjects": {c, WithAdminSubjects("")},
		"WithAdminEmails":   {c, WithAdminEmails("not-an-email")},
		"no admin rule":     {c},
		"zero Option":       {c, admin, {}},
	}
	for name, opts := range cases {
		_, err := NewVerifier(ctx, o.url, "lpsec", opts...)
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), strings.Fields(name)[0]) && name != "no admin rule" {
			t.Errorf("%s: %v, want ErrInvalidOption naming it", name, err)
		}
	}
	for _, alg := range []string{"none", "HS256", "HS512", "RSA-OAEP", ""} {
		if _, err := NewVerifier(ctx, o.url, "lpsec", c, admin, WithAlgorithms(alg)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WithAlgorithms(%q): %v", alg, err)
		}
	}
	if _, err := NewVerifier(ctx, o.url, "", c, admin); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty client ID: %v", err)
	}
	// An algorithm allowed by the provider but not by the verifier.
	v := o.verifier(t, admin, WithAlgorithms("RS256"))
	if _, err := v.Verify(ctx, o.sign(t, o.claims(time.Now()))); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("ES256 token, RS256 allowed: %v, want ErrAlgorithm", err)
	}
}
