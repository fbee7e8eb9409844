package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ownIssuer is an OpenID provider whose keys the tests hold, to craft the
// tokens a real provider never issues (another issuer in iss, several
// audiences, no iat...). Its discovery document and key set are served
// over TLS like a provider's.
type ownIssuer struct {
	srv *httptest.Server
	url string
	key *ecdsa.PrivateKey
	kid string
	mu  sync.Mutex
	set []byte
}

func startOwnIssuer(t testing.TB) *ownIssuer {
	t.Helper()
	o := &ownIssuer{kid: "own-1"}
	var err error
	if o.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &o.key.PublicKey, KeyID: o.kid, Algorithm: "ES256", Use: "sig"}}})
	o.set = set
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": o.url, "jwks_uri": o.url + "/jwks",
			"authorization_endpoint": o.url + "/auth", "token_endpoint": o.url + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		w.Write(o.set)
	})
	o.srv = httptest.NewTLSServer(mux)
	t.Cleanup(o.srv.Close)
	o.url = o.srv.URL
	return o
}

// claims returns valid claims for clientID issued at now.
func (o *ownIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": o.url, "sub": "alice-42", "aud": "lpsec", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "groups": []string{"lpsec-admins"},
		"email": "Alice@Example.org", "email_verified": true, "name": "Alice Admin",
	}
}

func (o *ownIssuer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return signES256(t, o.key, o.kid, claims)
}

func signES256(t testing.TB, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (o *ownIssuer) verifier(t testing.TB, opts ...Option) *Verifier {
	t.Helper()
	opts = append([]Option{WithHTTPClient(o.srv.Client())}, opts...)
	v, err := NewVerifier(context.Background(), o.url, "lpsec", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func segments(raw string) []string { return strings.Split(raw, ".") }

// fixedClock is a clock tests move by hand.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
