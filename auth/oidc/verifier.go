package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// A Verifier checks ID tokens of one provider for one client. It is safe
// for concurrent use.
type Verifier struct {
	issuer   string
	clientID string
	s        *settings
	keys     *keySet
	algs     []jose.SignatureAlgorithm
	endpoint oauth2.Endpoint
}

// Identity is who a verified ID token names.
type Identity struct {
	// User is the stable identity to declare in a login macaroon: the
	// issuer and subject joined by "#" (an issuer URL has no fragment, so
	// the join is unambiguous), or the verified email with
	// WithEmailIdentity. Never a display name.
	User    string
	Issuer  string
	Subject string
	Email   string // only when the provider marks it verified
	Expiry  time.Time
}

// NewVerifier fetches issuer's discovery document (issuer must be an
// https URL and the document must name the same issuer and an https
// jwks_uri) and returns a verifier of ID tokens issued to clientID. One
// admin rule is required: [WithAdminClaim], [WithAdminSubjects] or
// [WithAdminEmails].
func NewVerifier(ctx context.Context, issuer, clientID string, opts ...Option) (*Verifier, error) {
	s, err := build(opts)
	if err != nil {
		return nil, err
	}
	if clientID == "" {
		return nil, fmt.Errorf("%w: empty client ID", ErrInvalidOption)
	}
	if !isHTTPS(issuer) {
		return nil, fmt.Errorf("%w: issuer %q is not an https URL", ErrDiscovery, issuer)
	}
	client := limitedClient(s.client)
	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, client), issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiscovery, err)
	}
	var doc struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := provider.Claims(&doc); err != nil || !isHTTPS(doc.JWKS) {
		return nil, fmt.Errorf("%w: jwks_uri %q is not an https URL", ErrDiscovery, doc.JWKS)
	}
	algs := make([]jose.SignatureAlgorithm, len(s.algorithms))
	for i, a := range s.algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	keys := &keySet{
		url: doc.JWKS, client: client, now: s.now,
		interval: s.refresh, maxAge: s.keyMaxAge, sem: make(chan struct{}, 1),
	}
	return &Verifier{issuer: issuer, clientID: clientID, s: s, keys: keys, algs: algs, endpoint: provider.Endpoint()}, nil
}

// Endpoint returns the provider's OAuth 2.0 endpoints from discovery
// (authorization, token and device authorization URLs), for clients
// that obtain the ID token with golang.org/x/oauth2.
func (v *Verifier) Endpoint() oauth2.Endpoint { return v.endpoint }

// Verify checks rawIDToken and returns the admin identity it names. Every
// refusal wraps one of the package's Err sentinels and is logged as an
// "sso_refused" event with its reason; success is logged as "sso_login".
func (v *Verifier) Verify(ctx context.Context, rawIDToken string) (*Identity, error) {
	return v.verify(ctx, rawIDToken, "", false)
}

// VerifyNonce is Verify for a login that sent a nonce: the token's
// "nonce" claim must equal nonce, which must not be empty.
func (v *Verifier) VerifyNonce(ctx context.Context, rawIDToken, nonce string) (*Identity, error) {
	return v.verify(ctx, rawIDToken, nonce, true)
}

func (v *Verifier) verify(ctx context.Context, raw, nonce string, checkNonce bool) (*Identity, error) {
	id, err := v.check(ctx, raw, nonce, checkNonce)
	if err != nil {
		attrs := []slog.Attr{slog.String("event", "sso_refused"), slog.String("reason", reason(err)), slog.String("issuer", v.issuer)}
		if id != nil {
			attrs = append(attrs, slog.String("user", id.User))
		}
		v.s.logger.LogAttrs(ctx, slog.LevelWarn, "sso login refused", attrs...)
		return nil, err
	}
	v.s.logger.LogAttrs(ctx, slog.LevelInfo, "sso login", slog.String("event", "sso_login"),
		slog.String("user", id.User), slog.String("issuer", v.issuer))
	return id, nil
}

type header struct {
	Alg  string          `json:"alg"`
	Crit json.RawMessage `json:"crit"`
}

// claims are the claims this package reads. Types are strict: a claim of
// another JSON type fails the decoding (ErrMalformed).
type claims struct {
	Iss           string          `json:"iss"`
	Sub           string          `json:"sub"`
	Aud           json.RawMessage `json:"aud"`
	Azp           string          `json:"azp"`
	Exp           *float64        `json:"exp"`
	Iat           *float64        `json:"iat"`
	Nbf           *float64        `json:"nbf"`
	Nonce         string          `json:"nonce"`
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
}

func (v *Verifier) check(ctx context.Context, raw, nonce string, checkNonce bool) (*Identity, error) {
	if len(raw) > v.s.maxTokenSize {
		return nil, ErrTooLarge
	}
	// Compact JWS only: exactly three segments, a small header naming an
	// allowed algorithm, before any key is looked at.
	h, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 || len(h) > maxHeaderBytes {
		return nil, ErrMalformed
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, ErrMalformed
	}
	var hd header
	if err := json.Unmarshal(hb, &hd); err != nil {
		return nil, ErrMalformed
	}
	if !slices.Contains(v.s.algorithms, hd.Alg) {
		return nil, fmt.Errorf("%w: %.16q", ErrAlgorithm, hd.Alg)
	}
	if hd.Crit != nil {
		return nil, fmt.Errorf("%w: critical header parameters", ErrMalformed)
	}

	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return nil, ErrMalformed
	}
	payload, err := v.keys.verify(ctx, jws)
	if err != nil {
		return nil, err
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, ErrMalformed
	}
	if c.Iss != v.issuer {
		return nil, ErrIssuer
	}
	// aud must hold the client ID; with several audiences, or an azp
	// claim, the token must have been issued to this client (azp), as
	// OpenID Connect Core §3.1.3.7 asks.
	aud, ok := audience(c.Aud)
	if !ok {
		return nil, ErrMalformed
	}
	if !slices.Contains(aud, v.clientID) || (len(aud) > 1 || c.Azp != "") && c.Azp != v.clientID {
		return nil, ErrAudience
	}
	now := v.s.now()
	exp, ok := unix(c.Exp)
	if !ok || !now.Before(exp.Add(v.s.skew)) {
		return nil, ErrExpired
	}
	iat, ok := unix(c.Iat)
	if !ok || iat.After(now.Add(v.s.skew)) {
		return nil, ErrNotYetValid
	}
	if c.Nbf != nil {
		if nbf, ok := unix(c.Nbf); !ok || nbf.After(now.Add(v.s.skew)) {
			return nil, ErrNotYetValid
		}
	}
	if checkNonce && (nonce == "" || subtle.ConstantTimeCompare([]byte(nonce), []byte(c.Nonce)) != 1) {
		return nil, ErrNonce
	}
	if !printable(c.Sub) {
		return nil, ErrNoIdentity
	}
	id := &Identity{Issuer: c.Iss, Subject: c.Sub, Expiry: exp, User: c.Iss + "#" + c.Sub}
	if verified(c.EmailVerified) && c.Email != "" && printable(c.Email) {
		id.Email = c.Email
	}
	if v.s.emailIdentity {
		if id.Email == "" {
			return nil, ErrNoIdentity
		}
		id.User = id.Email
	}
	if !v.admin(payload, id) {
		return id, ErrNotAdmin
	}
	return id, nil
}

func (v *Verifier) admin(payload []byte, id *Identity) bool {
	if slices.Contains(v.s.adminSubjects, id.Subject) {
		return true
	}
	if id.Email != "" && slices.Contains(v.s.adminEmails, strings.ToLower(id.Email)) {
		return true
	}
	if v.s.adminClaim == "" {
		return false
	}
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &all) != nil {
		return false
	}
	rawClaim, ok := all[v.s.adminClaim]
	if !ok {
		return false
	}
	var one string
	if json.Unmarshal(rawClaim, &one) == nil {
		return one == v.s.adminValue
	}
	var many []string
	if json.Unmarshal(rawClaim, &many) == nil {
		return slices.Contains(many, v.s.adminValue)
	}
	return false
}

// audience reads "aud": a string or an array of strings.
func audience(raw json.RawMessage) ([]string, bool) {
	if raw == nil {
		return nil, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, true
	}
	return nil, false
}

// unix converts a NumericDate; absent, negative, NaN or absurd values are
// not dates.
func unix(f *float64) (time.Time, bool) {
	if f == nil || math.IsNaN(*f) || *f < 0 || *f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(*f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// verified reads email_verified, a boolean or (some providers) the string "true".
func verified(raw json.RawMessage) bool {
	return bytes.Equal(raw, []byte("true")) || bytes.Equal(raw, []byte(`"true"`))
}

// printable: 1 to 255 bytes of printable ASCII, as OpenID Connect Core
// §2 bounds "sub".
func printable(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Fragment == "" && u.User == nil
}

// limitedClient is c with response bodies cut at maxDocumentBytes:
// go-oidc reads the discovery document with io.ReadAll.
func limitedClient(c *http.Client) *http.Client {
	lc := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	lc.Transport = limitTransport{base}
	return &lc
}

type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, n: maxDocumentBytes}
	return resp, nil
}

var errTooLong = errors.New("oidc: provider response too long")

type limitedBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errTooLong
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.rc.Read(p)
	b.n -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
