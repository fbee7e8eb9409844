// Package oidcop runs a real OpenID provider in-process for tests: the
// example OP of github.com/zitadel/oidc/v3 (OpenID-certified library,
// written by no one here) with its in-memory storage, served over TLS by
// httptest. Two things are added around the example's storage, through
// the storage interface the provider calls: signing keys that tests can
// rotate (the example's key is fixed and unexported), and a "groups"
// claim in ID tokens (the example sets none), as real deployments
// configure their provider to do.
//
// The example's device login records the login name as the subject; the
// wrapper records the user's ID, as the code flow does.
//
// Tests start one with Start; the demo (examples/demo) with New. The
// lpsec packages link none of it (internal/depgraph checks).
package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// Clients registered with the provider.
const (
	WebClientID     = "lpsec-web"
	WebClientSecret = "web-secret"
	RedirectURI     = "https://rp.invalid/callback"
	DeviceClientID  = "lpsec-admin-cli"
	DeviceSecret    = "device-secret"
	OtherClientID   = "someone-else"
	// Users of the example storage: AdminUser is in the AdminGroup; Password is theirs.
	AdminSubject = "id1"
	OtherSubject = "id2"
	AdminGroup   = "lpsec-admins"
	Password     = "verysecure"
	GroupsClaim  = "groups"
)

// Provider is a running OpenID provider.
type Provider struct {
	Issuer string
	Server *httptest.Server
	store  *store

	mu   sync.Mutex
	down bool
}

// Start starts a provider; it stops when the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	p, err := New(context.Background())
	if err != nil {
		t.Fatalf("oidcop: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a provider on a loopback TLS listener with a certificate of
// httptest's own CA (Client trusts it; CACertPEM exports it). Close stops it.
// The example's setup sets slog's default logger (to a discarding one):
// callers log through injected loggers, as lpsec does.
func New(ctx context.Context) (*Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Provider{}
	p.Server = httptest.NewUnstartedServer(nil)
	p.Server.StartTLS()
	p.Issuer = p.Server.URL
	users := storage.NewUserStore(p.Issuer)
	clients := map[string]*storage.Client{
		WebClientID:    storage.WebClient(WebClientID, WebClientSecret, RedirectURI),
		OtherClientID:  storage.WebClient(OtherClientID, WebClientSecret, RedirectURI),
		DeviceClientID: storage.DeviceClient(DeviceClientID, DeviceSecret),
	}
	p.store = &store{Storage: storage.NewStorageWithClients(users, clients), users: users}
	if err := p.store.rotateKeep(true); err != nil {
		p.Server.Close()
		return nil, err
	}
	router := exampleop.SetupServer(p.Issuer, p.store, slog.New(slog.DiscardHandler), false)
	p.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		router.ServeHTTP(w, r)
	})
	return p, nil
}

// Close stops the provider and waits for its connections to end.
func (p *Provider) Close() { p.Server.Close() }

// CACertPEM is the PEM certificate the provider serves, to pass to a
// relying party as its extra trust (the server's --oidc-ca-certs).
func (p *Provider) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Server.Certificate().Raw})
}

// SetDown makes every endpoint answer 503 (or serve again).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// RotateKey makes a new signing key current; the old one stays in the
// key set only if keepOld.
func (p *Provider) RotateKey(keepOld bool) {
	if err := p.store.rotateKeep(keepOld); err != nil {
		panic(err) // crypto/rand does not fail
	}
}

// Client is an HTTP client trusting the provider's certificate.
func (p *Provider) Client() *http.Client { return p.Server.Client() }

// Username is the login name of the user with this subject.
func (p *Provider) Username(subject string) string {
	host := strings.Split(strings.TrimPrefix(p.Issuer, "https://"), ":")[0]
	if subject == AdminSubject {
		return "test-user@" + host
	}
	return "test-user2"
}

// IDToken logs subject in through the authorization code flow, as a
// browser would (authorization request, the example's login form, the
// redirect with the code), and returns the ID token the token endpoint
// issues to clientID.
func (p *Provider) IDToken(t testing.TB, clientID, subject, nonce string) string {
	t.Helper()
	ctx := context.Background()
	hc := *p.Client()
	hc.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "rp.invalid" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	cfg := oauth2.Config{
		ClientID: clientID, ClientSecret: WebClientSecret, RedirectURL: RedirectURI,
		Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{
			AuthURL:  p.Issuer + "/auth",
			TokenURL: p.Issuer + "/oauth/token",
		},
	}
	opts := []oauth2.AuthCodeOption{}
	if nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	resp, err := hc.Get(cfg.AuthCodeURL("state1", opts...))
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("authorization request: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err = hc.PostForm(p.Issuer+"/login/username", url.Values{
		"id": {id}, "username": {p.Username(subject)}, "password": {Password},
	})
	if err != nil {
		t.Fatalf("login form: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusFound || loc.Host != "rp.invalid" {
		t.Fatalf("login form: status %d, location %v (%v)", resp.StatusCode, loc, err)
	}
	code := loc.Query().Get("code")
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, p.Client()), code)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response without id_token")
	}
	return raw
}

// ApproveDevice completes the provider's device login page for userCode
// as the user with this subject: the login form, then "allow".
func (p *Provider) ApproveDevice(t testing.TB, userCode, subject string) {
	t.Helper()
	if err := p.ApproveDeviceCode(context.Background(), userCode, subject); err != nil {
		t.Fatal(err)
	}
}

// ApproveDeviceCode is ApproveDevice returning its failure.
func (p *Provider) ApproveDeviceCode(ctx context.Context, userCode, subject string) error {
	hc := *p.Client()
	hc.Jar = &cookieJar{}
	post := func(path string, form url.Values) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+path, strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return string(body), err
	}
	if _, err := post("/device/login", url.Values{
		"user_code": {userCode}, "username": {p.Username(subject)}, "password": {Password},
	}); err != nil {
		return fmt.Errorf("oidcop: device login: %w", err)
	}
	body, err := post("/device/confirm", url.Values{"action": {"allowed"}})
	if err != nil {
		return fmt.Errorf("oidcop: device confirm: %w", err)
	}
	if !strings.Contains(body, "Device authorization allowed") {
		return fmt.Errorf("oidcop: device confirm: %.200q", body)
	}
	return nil
}

type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	j.cookies = append(j.cookies, cs...)
	j.mu.Unlock()
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cookies
}

// store is the example storage with rotating keys and a groups claim.
type store struct {
	*storage.Storage
	users storage.UserStore
	mu    sync.Mutex
	keys  []*key // current first
}

type key struct {
	id  string
	rsa *rsa.PrivateKey
}

func (k *key) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *key) Key() any                                    { return k.rsa }
func (k *key) ID() string                                  { return k.id }

type pub struct{ *key }

func (k pub) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k pub) Use() string                        { return "sig" }
func (k pub) Key() any                           { return &k.rsa.PublicKey }

func (s *store) rotateKeep(keepOld bool) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nk := &key{id: fmt.Sprintf("key-%d", len(s.keys)+1), rsa: k}
	if keepOld {
		s.keys = append([]*key{nk}, s.keys...)
	} else {
		s.keys = []*key{nk}
	}
	return nil
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0], nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ks []op.Key
	for _, k := range s.keys {
		ks = append(ks, pub{k})
	}
	return ks, nil
}

// CompleteDeviceAuthorization records the user's ID as the subject: the
// example's device login passes the login name, which its own user
// lookup (by ID) then cannot find when it writes the ID token.
func (s *store) CompleteDeviceAuthorization(ctx context.Context, userCode, username string) error {
	if u := s.users.GetUserByUsername(username); u != nil {
		username = u.ID
	}
	return s.Storage.CompleteDeviceAuthorization(ctx, userCode, username)
}

func (s *store) SetUserinfoFromRequest(ctx context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if req.GetSubject() == AdminSubject {
		info.AppendClaims(GroupsClaim, []string{"staff", AdminGroup})
	} else {
		info.AppendClaims(GroupsClaim, []string{"staff"})
	}
	return nil
}
