package macaroon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
	"gopkg.in/macaroon.v2"
)

// tlsFixture serves the fixture's discharger over TLS and pins it as the
// service's third party.
func tlsFixture(t *testing.T) (*fixture, *httptest.Server, *DischargeClient) {
	t.Helper()
	f := newFixture(t)
	srv := httptest.NewTLSServer(f.dis)
	t.Cleanup(srv.Close)
	svc, err := NewService("https://lpsec.example", f.svc.key, f.store,
		WithThirdParty(srv.URL, &f.tpKey.Public), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	dc, err := NewDischargeClient([]string{srv.URL}, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return f, srv, dc
}

func TestDischargeOverHTTPS(t *testing.T) {
	f, srv, dc := tlsFixture(t)
	m, err := f.svc.MintResource(context.Background(), srv.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := dc.DischargeAll(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d macaroons, want primary + 1 discharge", len(ms))
	}
	// Every discharge carries a time-before, whatever the callback says.
	var hasTB bool
	for _, c := range ms[1].Caveats() {
		hasTB = hasTB || strings.HasPrefix(string(c.Id), "time-before ")
	}
	if !hasTB {
		t.Fatal("discharge without time-before caveat")
	}
	if _, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opRegister); err != nil {
		t.Fatal(err)
	}
}

// The bakery's own httpbakery client must be able to use the discharger.
func TestDischargerServesHTTPBakeryClient(t *testing.T) {
	f, srv, _ := tlsFixture(t)
	m, err := f.svc.MintResource(context.Background(), srv.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	c := httpbakery.NewClient()
	c.Client = srv.Client()
	c.Client.Jar, _ = cookiejar.New(nil)
	ms, err := c.DischargeAll(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opRegister); err != nil {
		t.Fatal(err)
	}
	// And its third-party locator must read our /publickey.
	loc := httpbakery.NewThirdPartyLocator(srv.Client(), nil)
	info, err := loc.ThirdPartyInfo(context.Background(), srv.URL)
	if err != nil || info.PublicKey != f.tpKey.Public {
		t.Fatalf("locator: %+v, %v", info, err)
	}
}

func TestDischargeDenied(t *testing.T) {
	f, srv, dc := tlsFixture(t)
	m, err := f.svc.MintResource(context.Background(), srv.URL, "not-entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.DischargeAll(context.Background(), m); !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied", err)
	}
	if strings.Contains(f.logs.String(), "not entitled") == false {
		t.Fatalf("the callback's reason should be logged server-side: %s", f.logs)
	}
}

func TestDischargeClientRefusesLocations(t *testing.T) {
	f, srv, _ := tlsFixture(t)
	m, err := f.svc.MintResource(context.Background(), srv.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests++ }))
	defer other.Close()
	dc, err := NewDischargeClient([]string{other.URL}, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.DischargeAll(context.Background(), m); !errors.Is(err, ErrLocationNotAllowed) {
		t.Fatalf("err = %v, want ErrLocationNotAllowed", err)
	}
	if requests != 0 {
		t.Fatal("contacted a location that is not allow-listed")
	}
	for _, bad := range []string{"http://contracts.example", "contracts.example", "https://", "https://u:p@c.example", "https://c.example/?q=1"} {
		if _, err := NewDischargeClient([]string{bad}); !errors.Is(err, ErrLocationNotAllowed) || !errors.Is(err, ErrInvalidOption) {
			t.Errorf("allow-list %q accepted: %v", bad, err)
		}
	}
	if _, err := NewDischargeClient(nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty allow-list: %v; want ErrInvalidOption", err)
	}
	if _, err := NewDischargeClient([]string{"https://c.example"}, WithHTTPClient(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("WithHTTPClient(nil): %v; want ErrInvalidOption", err)
	}
	if _, err := NewDischargeClient([]string{"https://c.example"}, WithLogger(slog.Default())); !errors.Is(err, ErrInvalidOption) ||
		!strings.Contains(err.Error(), "WithLogger does not apply to NewDischargeClient") {
		t.Errorf("WithLogger to NewDischargeClient: %v; want ErrInvalidOption", err)
	}
}

func TestDischargeClientDoesNotFollowRedirects(t *testing.T) {
	f, srv, _ := tlsFixture(t)
	redirector := httptest.NewTLSServer(http.RedirectHandler(srv.URL+"/discharge", http.StatusTemporaryRedirect))
	defer redirector.Close()
	// Mint for the redirector's location with the real discharger's key.
	svc, _ := NewService("l", f.svc.key, f.store, WithThirdParty(redirector.URL, &f.tpKey.Public))
	m, err := svc.MintResource(context.Background(), redirector.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := NewDischargeClient([]string{redirector.URL}, WithHTTPClient(srv.Client()))
	if _, err := dc.DischargeAll(context.Background(), m); err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("err = %v, want the redirect refused", err)
	}
}

func TestDischargerMalformedRequests(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	cav, payload := thirdPartyCaveat(t, m)
	otherKey, _ := GenerateKey()
	b64 := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"get on discharge", "GET", "/discharge", "", 405},
		{"post on publickey", "POST", "/publickey", "", 405},
		{"unknown path", "GET", "/admin", "", 404},
		{"no id", "POST", "/discharge", "", 400},
		{"bad base64 id", "POST", "/discharge", "id64=!!!", 400},
		{"bad base64 caveat", "POST", "/discharge", "id64=" + b64(cav.Id) + "&caveat64=%%%", 400},
		{"bad form encoding", "POST", "/discharge", "id=%zz", 400},
		{"v3 id without its payload", "POST", "/discharge", "id64=" + b64(cav.Id), 400},
		{"caveat for another discharger", "POST", "/discharge", "id64=" + b64(cav.Id) + "&caveat64=" + b64(sealCaveat(t, &otherKey.Public, []byte{3, 1, 'k', 0})), 400},
		{"caveat with a flipped bit", "POST", "/discharge", "id64=" + b64(cav.Id) + "&caveat64=" + b64(flip(payload)), 400},
		{"secret part version mismatch", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte{2, 1, 'k'})), 400},
		{"empty root key", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte{3, 0, 0, 'c'})), 400},
		{"bad namespace", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte{3, 1, 'k', 3, 'x', 'y', 'z', 'c'})), 400},
		{"version 1 caveat", "POST", "/discharge", url.Values{"id": {base64.StdEncoding.EncodeToString([]byte(`{"ThirdPartyPublicKey":"x"}`))}}.Encode(), 400},
		{"oversized body", "POST", "/discharge", "id=" + strings.Repeat("a", maxDischargeBody), 400},
		{"need-declared condition", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte("\x03\x01k\x00need-declared username entitled"))), 403},
		{"condition refused", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte("\x03\x01k\x00other"))), 403},
		{"good", "POST", "/discharge", "id64=" + b64(cav.Id) + "&caveat64=" + b64(payload), 200},
		{"good inline caveat", "POST", "/discharge", "id64=" + b64(sealCaveat(t, &f.tpKey.Public, []byte("\x03\x01k\x00entitled"))), 200},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			f.dis.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, c.want)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %q", rec.Body)
			}
			if c.want != 200 && body["Code"] == nil {
				t.Fatalf("error body without Code: %s", rec.Body)
			}
		})
	}
}

func flip(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)-1] ^= 1
	return b
}

func TestDischargerPublicKey(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/publickey", "/discharge/info"} {
		rec := httptest.NewRecorder()
		f.dis.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var resp struct{ PublicKey string }
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		pk, err := ParsePublicKey(resp.PublicKey)
		if err != nil || *pk != f.tpKey.Public {
			t.Fatalf("%s: %v %v", path, pk, err)
		}
	}
}

func TestNewDischargerRejectsBadConfig(t *testing.T) {
	key, _ := GenerateKey()
	check := func(context.Context, *http.Request, string) error { return nil }
	for _, tc := range []struct {
		name  string
		key   *bakery.KeyPair
		check CheckFunc
		opts  []Option
		want  error
	}{
		{"no key", nil, check, nil, ErrInvalidKey},
		{"no check", key, nil, nil, ErrInvalidOption},
		{"negative ttl", key, check, []Option{WithDischargeTTL(-1)}, ErrInvalidOption},
		{"zero ttl", key, check, []Option{WithDischargeTTL(0)}, ErrInvalidOption},
		{"max ttl to discharger", key, check, []Option{WithMaxTTL(time.Hour)}, ErrInvalidOption},
		{"nil logger", key, check, []Option{WithLogger(nil)}, ErrInvalidOption},
	} {
		if _, err := NewDischarger(tc.key, tc.check, tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v; want %v", tc.name, err, tc.want)
		}
	}
}

// thirdPartyCaveat returns m's third-party caveat and its encrypted
// payload, as a client would send them to the discharger.
func thirdPartyCaveat(t testing.TB, m *bakery.Macaroon) (cav macaroon.Caveat, payload []byte) {
	t.Helper()
	stop := errors.New("stop")
	_, err := bakery.DischargeAll(context.Background(), m, func(_ context.Context, c macaroon.Caveat, p []byte) (*bakery.Macaroon, error) {
		cav, payload = c, p
		return nil, stop
	})
	if err == nil || len(payload) == 0 {
		t.Fatalf("no third-party caveat with payload: %v", err)
	}
	return cav, payload
}
