package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

type bearerTransport struct {
	secret string
	next   http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.secret)
	return b.next.RoundTrip(r)
}

// TestIdentityLogin: admin login through the example identity service
// (issue 18 item 2), over the wire against the real server and identity
// binaries. The server mints a macaroon whose identity caveat only the
// pinned identity service can discharge; its discharge names the admin,
// who must still be in the server's admin list.
func TestIdentityLogin(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	aliceSecret, mallorySecret := "alice-"+randHex(12), "mallory-"+randHex(12)
	// mallory is known to the identity service but is no admin of the server.
	// The identity service also vouches for an "ISSUER#SUBJECT" name, the
	// form OpenID Connect logins get, which it must not be able to declare.
	// Without --oidc-issuer the admin list refuses it too; with one, only
	// the server's identity check does (TestIdentityCannotDeclareSSONames).
	oidcSecret := "oidc-" + randHex(12)
	idp := start(t, []string{"LPSEC_IDENTITY_USERS=alice=" + aliceSecret + ",mallory=" + mallorySecret + ",https://oidc.example#root=" + oidcSecret},
		"identity", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "identity"))
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server",
		append(serverArgs(f, filepath.Join(dir, "server")), "--identity-url", idp.URL,
			"--identity-public-key", idp.line(t, `public key (\S+) `))...)
	ca := bundle(t, dir, srv.line(t, `CA in (\S+) \(`), idp.line(t, `CA in (\S+)`))
	a, err := client.NewAdmin(srv.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	hc := a.HTTP()

	mint := func() *bakery.Macaroon {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/admin/login/identity", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lr struct {
			api.IdentityLoginResponse
			Macaroon json.RawMessage `json:"macaroon"`
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &lr) != nil || lr.IdentityURL != idp.URL {
			t.Fatalf("POST /v1/admin/login/identity: %d %s", resp.StatusCode, body)
		}
		m, err := lpmac.ParseMacaroon(lr.Macaroon)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	discharger := func(secret string) *lpmac.DischargeClient {
		c := *hc
		c.Transport = bearerTransport{secret: secret, next: hc.Transport}
		dc, err := lpmac.NewDischargeClient([]string{idp.URL}, lpmac.WithHTTPClient(&c))
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	authz := func(ms lpmac.Slice) string {
		t.Helper()
		enc, err := lpmac.EncodeSlice(ms)
		if err != nil {
			t.Fatal(err)
		}
		return "Macaroon " + enc
	}
	tokens := func(authz string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/admin/auth-tokens", nil)
		req.Header.Set("Authorization", authz)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Tokens []api.TokenInfo `json:"tokens"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("listing tokens: %d", resp.StatusCode)
		}
		return len(out.Tokens)
	}
	create := `{"name":"sso-made","valid_for":"1h"}`

	// Undischarged, the macaroon grants nothing.
	m := mint()
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", authz(lpmac.Slice{m.M()}), create); got != 401 || code != "discharge_required" {
		t.Errorf("undischarged: %d %q, want 401 discharge_required", got, code)
	}
	// A wrong secret: the identity service refuses to discharge.
	if _, err := discharger("wrong-"+randHex(12)).DischargeAll(ctx, m); !errors.Is(err, lpmac.ErrDenied) || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("wrong secret: err = %v; want ErrDenied with HTTP 403", err)
	}
	// alice's discharge makes it an admin macaroon for alice.
	alice, err := discharger(aliceSecret).DischargeAll(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	aliceAuthz := authz(alice)
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", aliceAuthz, create); got != 201 {
		t.Fatalf("alice creating a token: %d %q", got, code)
	}
	if n := tokens(aliceAuthz); n != 1 {
		t.Fatalf("%d tokens, want 1", n)
	}
	if !strings.Contains(srv.stderr.String(), `"event":"macaroon_identity_declared","user":"alice"`) {
		t.Errorf("no macaroon_identity_declared event for alice in the server log")
	}

	// mallory is authenticated by the identity service but is no admin.
	mallory, err := discharger(mallorySecret).DischargeAll(ctx, mint())
	if err != nil {
		t.Fatal(err)
	}
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", authz(mallory), create); got != 403 || code != "user_refused" {
		t.Errorf("mallory: %d %q, want 403 user_refused", got, code)
	}
	oidcName, err := discharger(oidcSecret).DischargeAll(ctx, mint())
	if err != nil {
		t.Fatal(err)
	}
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", authz(oidcName), create); got != 403 || code != "user_refused" {
		t.Errorf("identity service declaring an OpenID Connect name: %d %q, want 403 user_refused", got, code)
	}
	// alice's discharge is bound to her macaroon: with another one it is
	// refused (the discharge was made with the other caveat's root key and
	// bound to the other signature).
	other := mint()
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", authz(lpmac.Slice{other.M(), alice[1]}), create); got != 403 || code != "denied" {
		t.Errorf("alice's discharge with another macaroon: %d %q, want 403 denied", got, code)
	}
	// A Basic login's macaroon cannot gain a user from an identity
	// discharge: the holder appends an identity caveat and gets it
	// discharged as mallory.
	lr, err := a.Login(ctx, "alice", f.password)
	if err != nil {
		t.Fatal(err)
	}
	basic, err := lpmac.DecodeSlice(strings.TrimPrefix(lr.Header, "Macaroon "))
	if err != nil {
		t.Fatal(err)
	}
	bm, err := bakery.NewLegacyMacaroon(basic[0].Clone())
	if err != nil {
		t.Fatal(err)
	}
	holder, _ := lpmac.GenerateKey()
	pub, _ := lpmac.ParsePublicKey(idp.line(t, `public key (\S+) `))
	loc := bakery.NewThirdPartyStore()
	loc.AddInfo(idp.URL, bakery.ThirdPartyInfo{PublicKey: *pub, Version: bakery.LatestVersion})
	if err := bm.AddCaveat(ctx, checkers.Caveat{Location: idp.URL, Condition: lpmac.IdentityCondition}, holder, loc); err != nil {
		t.Fatal(err)
	}
	appended, err := discharger(mallorySecret).DischargeAll(ctx, bm)
	if err != nil {
		t.Fatal(err)
	}
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/auth-tokens", authz(appended), create); got != 403 || code != "denied" {
		t.Errorf("Basic login with an appended identity discharge: %d %q, want 403 denied", got, code)
	}
	// None of the refused requests created anything.
	if n := tokens(aliceAuthz); n != 1 {
		t.Fatalf("%d tokens after the refused requests, want 1", n)
	}
	// The identity session ends like any other: logout, then revoked.
	if got, code := call(t, hc, "POST", srv.URL+"/v1/admin/logout", aliceAuthz, ""); got != 204 {
		t.Fatalf("logout: %d %q", got, code)
	}
	if got, code := call(t, hc, "GET", srv.URL+"/v1/admin/auth-tokens", aliceAuthz, ""); got != 401 || code != "revoked" {
		t.Errorf("after logout: %d %q, want 401 revoked", got, code)
	}
}
