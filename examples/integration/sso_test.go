package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/oidcop"
)

// TestSSOLogin (issue 18): the server binary, configured with a real
// OpenID provider (zitadel's example OP, in this process, over TLS),
// mints the same login macaroon for "Authorization: Bearer <ID token>" as
// for Basic, and refuses every token it must refuse with 401 and no
// macaroon, leaving the admin's session and the token list unchanged.
func TestSSOLogin(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p := oidcop.Start(t)
	dir := t.TempDir()
	idpCA := filepath.Join(dir, "idp-ca.pem")
	if err := os.WriteFile(idpCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(serverArgs(f, filepath.Join(dir, "a")),
		"--oidc-issuer", p.Issuer, "--oidc-client-id", oidcop.WebClientID,
		"--oidc-admin-claim", oidcop.GroupsClaim+"="+oidcop.AdminGroup, "--oidc-ca-certs", idpCA)
	s := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", args...)
	ca := s.line(t, `CA in (\S+) \(`)
	a, err := client.NewAdmin(s.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	hc := a.HTTP()

	loginBody := func(authz string) (int, api.LoginResponse) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/admin/login", nil)
		req.Header.Set("Authorization", authz)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lr api.LoginResponse
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &lr)
		return resp.StatusCode, lr
	}

	idToken := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	st, lr := loginBody("Bearer " + idToken)
	if st != 200 || lr.Header == "" {
		t.Fatalf("SSO login: %d %+v", st, lr)
	}
	if want := p.Issuer + "#" + oidcop.AdminSubject; lr.User != want {
		t.Errorf("SSO login user %q, want %q", lr.User, want)
	}
	if ttl := time.Until(lr.Expires); ttl > 8*time.Hour+time.Minute || ttl < 7*time.Hour {
		t.Errorf("SSO macaroon lives %v, want the admin TTL (8h)", ttl)
	}
	if st, code := call(t, hc, "GET", s.URL+"/v1/admin/auth-tokens", lr.Header, ""); st != 200 {
		t.Fatalf("admin request with the SSO macaroon: %d %q", st, code)
	}
	if st, code := call(t, hc, "POST", s.URL+"/v1/admin/auth-tokens", lr.Header, `{"name":"sso-made"}`); st != 200 && st != 201 {
		t.Fatalf("creating a token with the SSO macaroon: %d %q", st, code)
	}
	countTokens := func() int {
		var out struct {
			Tokens []api.TokenInfo `json:"tokens"`
		}
		a.Authorization = lr.Header
		if err := a.Do(ctx, http.MethodGet, "/v1/admin/auth-tokens", nil, nil, &out); err != nil {
			t.Fatalf("listing tokens: %v", err)
		}
		return len(out.Tokens)
	}
	tokens := countTokens()
	// Basic still works beside it.
	if st, lr := loginBody(basic("alice", f.password)); st != 200 || lr.User != "alice" {
		t.Fatalf("Basic login beside SSO: %d %+v", st, lr)
	}

	seg := strings.Split(idToken, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + seg[1] + "."
	payload, _ := base64.RawURLEncoding.DecodeString(seg[1])
	tampered := seg[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), oidcop.AdminSubject, "id9", 1))) + "." + seg[2]
	refused := []struct{ what, authz string }{
		{"not in the admin group", "Bearer " + p.IDToken(t, oidcop.WebClientID, oidcop.OtherSubject, "")},
		{"issued to another client", "Bearer " + p.IDToken(t, oidcop.OtherClientID, oidcop.AdminSubject, "")},
		{"alg none", "Bearer " + none},
		{"tampered subject", "Bearer " + tampered},
		{"not a JWT", "Bearer abc"},
		{"too large", "Bearer " + idToken + strings.Repeat("A", 20000)},
		{"Basic, wrong password", basic("alice", "wrong")},
	}
	for _, c := range refused {
		st, lr := loginBody(c.authz)
		if st != 401 || lr.Header != "" {
			t.Errorf("%s: %d %+v, want 401 and no macaroon", c.what, st, lr)
		}
	}
	if n := countTokens(); n != tokens {
		t.Errorf("refused logins changed the token list: %d, want %d", n, tokens)
	}
	if st, code := call(t, hc, "GET", s.URL+"/v1/admin/auth-tokens", lr.Header, ""); st != 200 {
		t.Errorf("the SSO session after the refusals: %d %q", st, code)
	}

	// Logout ends the SSO macaroon like a Basic one.
	if st, code := call(t, hc, "POST", s.URL+"/v1/admin/logout", lr.Header, ""); st != 204 {
		t.Fatalf("logout: %d %q", st, code)
	}
	if st, code := call(t, hc, "GET", s.URL+"/v1/admin/auth-tokens", lr.Header, ""); st != 401 || code != "revoked" {
		t.Errorf("after logout: %d %q, want 401 revoked", st, code)
	}

	logs := s.stderr.String()
	for _, want := range []string{`"event":"sso_login"`, `"reason":"not_admin"`, `"reason":"audience"`, `"reason":"algorithm"`, `"reason":"signature"`, `"reason":"too_large"`, `"reason":"malformed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("server log lacks %s", want)
		}
	}
	if strings.Contains(logs, seg[2]) {
		t.Error("the server log holds an ID token's signature")
	}

	// A second server, whose verifier has fetched no keys yet, with the
	// provider down: a valid token is refused with 503 (fail closed), and
	// Basic is unaffected.
	b := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", append(serverArgs(f, filepath.Join(dir, "b")), args[len(serverArgs(f, "")):]...)...)
	ab, err := client.NewAdmin(b.URL, b.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	fresh := p.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")
	p.SetDown(true)
	for _, c := range []struct {
		authz  string
		status int
	}{{"Bearer " + fresh, 503}, {basic("alice", f.password), 200}} {
		req, _ := http.NewRequestWithContext(ctx, "POST", b.URL+"/v1/admin/login", nil)
		req.Header.Set("Authorization", c.authz)
		resp, err := ab.HTTP().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("provider down: %s login: %d, want %d", strings.Fields(c.authz)[0], resp.StatusCode, c.status)
		}
	}
	if !strings.Contains(b.stderr.String(), `"reason":"provider_unavailable"`) {
		t.Error(`server log lacks "reason":"provider_unavailable"`)
	}
}
