package macaroon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
)

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// granted is a handler that reports the grant the middleware passed on.
func granted(w http.ResponseWriter, r *http.Request) {
	g, ok := GrantFromContext(r.Context())
	if !ok {
		http.Error(w, "no grant", 500)
		return
	}
	_, _ = io.WriteString(w, "user="+g.User)
}

func withMacaroons(t testing.TB, ms Slice) http.Header {
	t.Helper()
	enc, err := EncodeSlice(ms)
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Authorization": {"Macaroon " + enc}}
}

// TestMiddlewareStatusTable: every sentinel gets the status, code and
// challenge of the documented table, the JSON body shape, and nothing
// from the request in the body.
func TestMiddlewareStatusTable(t *testing.T) {
	f := newFixture(t)
	unknown := f.login(t, "bob", opAdminRead)
	_ = f.store.Revoke(context.Background(), f.store.cur) // later mints use a new root key
	login := f.login(t, "alice", opAdminRead)
	res := f.resource(t, "entitled")
	readOnly := withMacaroons(t, Slice{login.M()})
	cases := []struct {
		name      string
		header    http.Header
		op        bakery.Op
		status    int
		code      string
		challenge string
	}{
		{"missing", nil, opAdminRead, 401, "unauthorized", "Macaroon"},
		{"malformed", http.Header{"Authorization": {"Macaroon %%%"}}, opAdminRead, 400, "malformed_macaroon", ""},
		{"denied", readOnly, opAdminWrite, 403, "denied", ""},
		{"discharge required", withMacaroons(t, Slice{res.M()}), opRegister, 401, "discharge_required", "Macaroon"},
		{"unknown root key", withMacaroons(t, Slice{unknown.M()}), opAdminRead, 401, "unknown_root_key", "Macaroon"},
	}
	h := f.svc.Require(opAdminRead)(http.HandlerFunc(granted))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := f.svc.Require(c.op)(http.HandlerFunc(granted))
			r := httptest.NewRequest("GET", "/admin", nil)
			for k, v := range c.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.challenge {
				t.Fatalf("%d %q, want %d %q", w.Code, w.Header().Get("WWW-Authenticate"), c.status, c.challenge)
			}
			var body struct{ Code, Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Code != c.code || body.Error == "" ||
				w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("body %q (%v)", w.Body, err)
			}
			if a := r.Header.Get("Authorization"); a != "" && strings.Contains(w.Body.String(), strings.TrimPrefix(a, "Macaroon ")) {
				t.Fatal("body echoes the credential")
			}
		})
	}
	// The good case passes the grant on.
	fresh := f.login(t, "alice", opAdminRead)
	r := httptest.NewRequest("GET", "/admin", nil)
	r.Header = withMacaroons(t, Slice{fresh.M()})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != "user=alice" {
		t.Fatalf("good macaroon: %d %q", w.Code, w.Body)
	}
	// Expired.
	f.clock.Advance(DefaultMaxTTL + time.Hour)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"code":"expired"`) {
		t.Fatalf("expired: %d %q", w.Code, w.Body)
	}
	// Store down.
	f.store.fail = errors.New("db down")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"code":"unavailable"`) || strings.Contains(w.Body.String(), "db down") {
		t.Fatalf("unavailable: %d %q", w.Code, w.Body)
	}
}

func TestHTTPStatusTable(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{ErrMissing, 401, "unauthorized"}, {ErrMalformed, 400, "malformed_macaroon"}, {ErrExpired, 401, "expired"},
		{&DischargeRequiredError{}, 401, "discharge_required"},
		{&DischargeRequiredError{cause: ErrExpired}, 401, "discharge_required"},
		{ErrUnknownRootKey, 401, "unknown_root_key"}, {ErrDenied, 403, "denied"}, {ErrUnavailable, 503, "unavailable"},
		{ErrRevoked, 401, "revoked"}, {ErrUserRefused, 403, "user_refused"},
		{errors.New("anything else"), 403, "denied"},
	} {
		if s, code, _ := HTTPStatus(c.err); s != c.status || code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, s, code, c.status, c.code)
		}
	}
}

func TestNewMiddlewareInvalidOptions(t *testing.T) {
	f := newFixture(t)
	mint := func(context.Context, *http.Request, []bakery.Op) (*bakery.Macaroon, error) { return nil, nil }
	for _, c := range []struct {
		name string
		svc  *Service
		opts []Option
		want string
	}{
		{"nil service", nil, nil, "macaroon: invalid option: NewMiddleware: nil Service"},
		{"nil writer", f.svc, []Option{WithErrorWriter(nil)}, "macaroon: invalid option: WithErrorWriter: nil ErrorWriter"},
		{"nil minter", f.svc, []Option{WithDischargeRequired(nil, "")}, "macaroon: invalid option: WithDischargeRequired: nil Minter"},
		{"bad suffix", f.svc, []Option{WithDischargeRequired(mint, "a;b")}, "macaroon: invalid option: WithDischargeRequired: cookie name suffix: macaroon: malformed: CookieNameSuffix is not a cookie-name token"},
		{"long suffix", f.svc, []Option{WithDischargeRequired(mint, strings.Repeat("a", 129))}, "macaroon: invalid option: WithDischargeRequired: cookie name suffix: macaroon: malformed: CookieNameSuffix longer than 128 bytes"},
		{"zero option", f.svc, []Option{{}}, "macaroon: invalid option: zero Option given to NewMiddleware"},
		{"service option", f.svc, []Option{WithLogger(slog.New(slog.DiscardHandler))}, "macaroon: invalid option: WithLogger does not apply to NewMiddleware"},
	} {
		m, err := NewMiddleware(c.svc, c.opts...)
		if m != nil || !errors.Is(err, ErrInvalidOption) || err.Error() != c.want {
			t.Errorf("%s: %v, %v\nwant %s", c.name, m, err, c.want)
		}
	}
	// The middleware options do not apply elsewhere either.
	if _, err := NewDischargeClient([]string{testTP}, WithErrorWriter(WriteJSONError)); !errors.Is(err, ErrInvalidOption) ||
		!strings.Contains(err.Error(), "WithErrorWriter does not apply to NewDischargeClient") {
		t.Errorf("WithErrorWriter to NewDischargeClient: %v", err)
	}
}

// resourceMiddleware mints resource macaroons for the fixture's third
// party, served over TLS (tlsFixture), and answers the bakery way.
func resourceMiddleware(t *testing.T, f *fixture, loc string) *Middleware {
	t.Helper()
	mw, err := NewMiddleware(f.svc,
		WithDischargeRequired(func(ctx context.Context, _ *http.Request, ops []bakery.Op) (*bakery.Macaroon, error) {
			return f.svc.MintResource(ctx, loc, "entitled", time.Hour, ops...)
		}, ""),
		WithErrorWriter(func(w http.ResponseWriter, _ *http.Request, status int, code, _ string) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "custom "+code)
		}))
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// TestMiddlewareStockHTTPBakeryClient: a stock httpbakery.Client, with no
// lpsec code on its side, meets the middleware: 401 discharge required,
// discharges at the lpsec Discharger, retries with the cookie, 200.
func TestMiddlewareStockHTTPBakeryClient(t *testing.T) {
	f, tp, _ := tlsFixture(t)
	mw := resourceMiddleware(t, f, tp.URL)
	srv := httptest.NewTLSServer(mw.Require(opRegister)(http.HandlerFunc(granted)))
	defer srv.Close()
	c := httpbakery.NewClient()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	pool.AddCert(tp.Certificate())
	c.Client.Transport = srv.Client().Transport
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/x", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "user=" {
		t.Fatalf("stock client: %d %q", resp.StatusCode, body)
	}
	u, _ := req.URL.Parse("/")
	if cs := c.Client.Jar.Cookies(u); len(cs) != 1 || cs[0].Name != "macaroon-auth" {
		t.Fatalf("cookies after the flow: %v", cs)
	}
}

// TestMiddlewareDischargeRequiredAnswers: which failures get the bakery
// answer, which keep the table, and a minting failure.
func TestMiddlewareDischargeRequiredAnswers(t *testing.T) {
	f := newFixture(t)
	mw := resourceMiddleware(t, f, testTP)
	h := mw.Require(opRegister)(http.HandlerFunc(granted))
	serve := func(hdr http.Header, version string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("PUT", "/v1/client/x", nil)
		for k, v := range hdr {
			r.Header[k] = v
		}
		if version != "" {
			r.Header.Set(BakeryProtocolHeader, version)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	res := f.resource(t, "entitled")
	for name, c := range map[string]struct {
		hdr     http.Header
		version string
		status  int
		bakery  bool
	}{
		"missing v3":           {nil, "3", 401, true},
		"missing v0":           {nil, "", 407, true},
		"undischarged":         {withMacaroons(t, Slice{res.M()}), "3", 401, true},
		"malformed keeps 400":  {http.Header{"Macaroons": {"!!"}}, "3", 400, false},
		"login macaroon 403":   {withMacaroons(t, Slice{f.login(t, "alice", opAdminRead).M()}), "3", 403, false},
		"discharged passes ok": {withMacaroons(t, f.discharge(t, res)), "3", 200, false},
	} {
		w := serve(c.hdr, c.version)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", name, w.Code, c.status, w.Body)
			continue
		}
		_, err := ParseDischargeRequired(w.Result())
		switch {
		case c.bakery && c.status == 401 && err != nil:
			t.Errorf("%s: not a discharge-required answer: %v", name, err)
		case c.bakery && c.status == 407 && !errors.Is(err, ErrProtocolVersion):
			t.Errorf("%s: %v", name, err)
		case !c.bakery && c.status != 200 && !strings.HasPrefix(w.Body.String(), "custom "):
			t.Errorf("%s: custom writer not used: %q", name, w.Body)
		}
	}
	// Minting fails: 503 through the writer.
	mw2, _ := NewMiddleware(f.svc, WithDischargeRequired(func(context.Context, *http.Request, []bakery.Op) (*bakery.Macaroon, error) {
		return nil, ErrUnavailable
	}, ""))
	w := httptest.NewRecorder()
	mw2.Require(opRegister)(http.HandlerFunc(granted)).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"code":"unavailable"`) {
		t.Fatalf("mint failure: %d %q", w.Code, w.Body)
	}
}

// BenchmarkMiddleware: the middleware's cost over Service.VerifyRequest
// alone, on the same request (bench/ratio.sh macaroon BenchmarkMiddleware).
// Target: ratio <= 1.05.
func BenchmarkMiddleware(b *testing.B) {
	f := newFixture(b)
	r := httptest.NewRequest("GET", "/admin", nil)
	r.Header = withMacaroons(b, Slice{f.login(b, "alice", opAdminRead).M()})
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	w := httptest.NewRecorder()
	b.Run("lpsec", func(b *testing.B) {
		h := f.svc.Require(opAdminRead)(ok)
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.svc.VerifyRequest(r.Context(), r, opAdminRead); err != nil {
				b.Fatal(err)
			}
			ok.ServeHTTP(w, r)
		}
	})
}

// BenchmarkMiddlewareInterleaved measures the same two paths alternately
// in batches of 32 within one loop and reports their time ratio
// (middleware/VerifyRequest) as the metric "ratio": load from other jobs on
// a shared machine hits both sides alike, which separate sub-benchmarks
// cannot promise.
func BenchmarkMiddlewareInterleaved(b *testing.B) {
	f := newFixture(b)
	r := httptest.NewRequest("GET", "/admin", nil)
	r.Header = withMacaroons(b, Slice{f.login(b, "alice", opAdminRead).M()})
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	w := httptest.NewRecorder()
	h := f.svc.Require(opAdminRead)(ok)
	const batch = 32
	runMW := func() time.Duration {
		t0 := time.Now()
		for range batch {
			h.ServeHTTP(w, r)
		}
		return time.Since(t0)
	}
	runBase := func() time.Duration {
		t0 := time.Now()
		for range batch {
			if _, err := f.svc.VerifyRequest(r.Context(), r, opAdminRead); err != nil {
				b.Fatal(err)
			}
			ok.ServeHTTP(w, r)
		}
		return time.Since(t0)
	}
	// The order alternates (ABBA), so that whatever one batch leaves to the
	// next (garbage to collect, a warm cache) falls on both sides alike.
	var mw, base time.Duration
	odd := false
	for b.Loop() {
		if odd {
			base += runBase()
			mw += runMW()
		} else {
			mw += runMW()
			base += runBase()
		}
		odd = !odd
	}
	b.ReportMetric(float64(mw)/float64(base), "ratio")
}
