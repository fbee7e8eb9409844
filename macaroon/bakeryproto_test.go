package macaroon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
	"gopkg.in/macaroon.v2"
)

// TestRequestVersionMatchesHTTPBakery is differential: the same header
// values through ours and httpbakery's.
func TestRequestVersionMatchesHTTPBakery(t *testing.T) {
	for _, v := range []string{"", "0", "1", "2", "3", "4", "99", "-1", "x", "3 ", " 3", "1e3", "99999999999999999999999"} {
		r := httptest.NewRequest("GET", "/", nil)
		if v != "" {
			r.Header.Set(BakeryProtocolHeader, v)
		}
		if got, want := RequestVersion(r), httpbakery.RequestVersion(r); got != want {
			t.Errorf("%q: version %d, httpbakery says %d", v, got, want)
		}
	}
}

// TestWriteDischargeRequiredMatchesHTTPBakery compares our answer with the
// one httpbakery.WriteError writes for NewDischargeRequiredError on the
// same macaroon and request: status, the two headers its clients read,
// and the body byte for byte.
func TestWriteDischargeRequiredMatchesHTTPBakery(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	for _, path := range []string{"/v1/client/0123", "/", "/a/b/c/", "/x"} {
		r := httptest.NewRequest("PUT", path, nil)
		r.Header.Set(BakeryProtocolHeader, "3")
		ours := httptest.NewRecorder()
		if err := WriteDischargeRequired(ours, r, DischargeRequired{Macaroon: m}); err != nil {
			t.Fatal(err)
		}
		theirs := httptest.NewRecorder()
		httpbakery.WriteError(context.Background(), theirs, httpbakery.NewDischargeRequiredError(httpbakery.DischargeRequiredErrorParams{Macaroon: m, Request: r}))
		if ours.Code != theirs.Code || ours.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, httpbakery %d", path, ours.Code, theirs.Code)
		}
		for _, h := range []string{"WWW-Authenticate", "Content-Type"} {
			if got, want := ours.Header().Values(h), theirs.Header().Values(h); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: %s %q, httpbakery %q", path, h, got, want)
			}
		}
		if !bytes.Equal(ours.Body.Bytes(), theirs.Body.Bytes()) {
			t.Errorf("%s: body\n%s\nhttpbakery writes\n%s", path, ours.Body, theirs.Body)
		}
	}
}

// TestWriteDischargeRequiredStatusPerVersion: httpbakery answers version 0
// with 407 and no challenge, versions 1-3 with 401 and the challenge.
func TestWriteDischargeRequiredStatusPerVersion(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	for _, c := range []struct {
		header    string
		status    int
		challenge string
	}{
		{"", 407, ""}, {"0", 407, ""}, {"junk", 407, ""}, {"1", 401, "Macaroon"},
		{"2", 401, "Macaroon"}, {"3", 401, "Macaroon"}, {"7", 401, "Macaroon"},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		if c.header != "" {
			r.Header.Set(BakeryProtocolHeader, c.header)
		}
		w := httptest.NewRecorder()
		if err := WriteDischargeRequired(w, r, DischargeRequired{Macaroon: m, CookieNameSuffix: "lp"}); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("version %q: %d %q, want %d %q", c.header, w.Code, w.Header().Get("WWW-Authenticate"), c.status, c.challenge)
		}
		// The Go client's own decoder reads it (for 407 and 401 alike).
		e := httpbakery.DefaultGetError(&http.Response{StatusCode: w.Code, Header: w.Header(), Body: io.NopCloser(bytes.NewReader(w.Body.Bytes()))})
		var be *httpbakery.Error
		if !errors.As(e, &be) || be.Code != httpbakery.ErrDischargeRequired || be.Info.CookieNameSuffix != "lp" || be.Info.Macaroon == nil {
			t.Errorf("version %q: httpbakery decodes %#v", c.header, e)
		}
	}
}

func answer(status int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{"Www-Authenticate": {"Macaroon"}, "Content-Type": {"application/json"}}
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func dischargeBody(t testing.TB, m any, path, suffix string) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"Code": DischargeRequiredCode, "Message": "m",
		"Info": map[string]any{"Macaroon": m, "MacaroonPath": path, "CookieNameSuffix": suffix}})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestParseDischargeRequiredHostile: answers a hostile or confused server
// could send, each refused with its sentinel.
func TestParseDischargeRequiredHostile(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	v2, err := bakery.NewMacaroon([]byte("k"), []byte("id-v2"), "loc", bakery.Version2, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := dischargeBody(t, m, "/", "auth")
	jsonOnly := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name string
		resp *http.Response
		want error
	}{
		{"200", answer(200, nil, good), ErrNotDischargeRequired},
		{"403", answer(403, nil, good), ErrNotDischargeRequired},
		{"401 Bearer challenge", answer(401, http.Header{"Www-Authenticate": {"Bearer"}, "Content-Type": {"application/json"}}, good), ErrNotDischargeRequired},
		{"401 two challenges", answer(401, http.Header{"Www-Authenticate": {"Macaroon", "Bearer"}, "Content-Type": {"application/json"}}, good), ErrNotDischargeRequired},
		{"401 without challenge", answer(401, jsonOnly, good), ErrNotDischargeRequired},
		{"407 version 0 form", answer(407, jsonOnly, good), ErrProtocolVersion},
		{"text/plain", answer(401, http.Header{"Www-Authenticate": {"Macaroon"}, "Content-Type": {"text/plain"}}, good), ErrNotDischargeRequired},
		{"interaction required", answer(401, nil, `{"Code":"interaction required","Message":"x","Info":{}}`), ErrNotDischargeRequired},
		{"lpsec JSON error", answer(401, nil, `{"code":"expired","error":"macaroon expired"}`), ErrNotDischargeRequired},
		{"not JSON", answer(401, nil, `<html>`), ErrMalformed},
		{"JSON array", answer(401, nil, `[]`), ErrMalformed},
		{"no Info", answer(401, nil, `{"Code":"macaroon discharge required"}`), ErrMalformed},
		{"null macaroon", answer(401, nil, `{"Code":"macaroon discharge required","Info":{"Macaroon":null}}`), ErrMalformed},
		{"macaroon string", answer(401, nil, `{"Code":"macaroon discharge required","Info":{"Macaroon":"AgE"}}`), ErrMalformed},
		{"oversized Info", answer(401, nil, `{"Code":"macaroon discharge required","Info":{"InteractionMethods":{"x":"`+strings.Repeat("A", MaxDischargeRequiredBytes)+`"}}}`), ErrMalformed},
		{"version 2 macaroon", answer(401, nil, dischargeBody(t, v2, "/", "auth")), ErrProtocolVersion},
		{"path with host", answer(401, nil, dischargeBody(t, m, "https://evil.example/", "auth")), ErrMalformed},
		{"path scheme-relative", answer(401, nil, dischargeBody(t, m, "//evil.example/x", "auth")), ErrMalformed},
		{"path with query", answer(401, nil, dischargeBody(t, m, "/?a=b", "auth")), ErrMalformed},
		{"path oversized", answer(401, nil, dischargeBody(t, m, "/"+strings.Repeat("a", 2000), "auth")), ErrMalformed},
		{"cookie suffix injects attribute", answer(401, nil, dischargeBody(t, m, "/", "x; Domain=evil.example")), ErrMalformed},
		{"cookie suffix oversized", answer(401, nil, dischargeBody(t, m, "/", strings.Repeat("a", 200))), ErrMalformed},
		{"nil response", nil, ErrNotDischargeRequired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dr, err := ParseDischargeRequired(c.resp)
			if !errors.Is(err, c.want) || dr != nil {
				t.Fatalf("got %v, %v; want %v", dr, err, c.want)
			}
		})
	}
	dr, err := ParseDischargeRequired(answer(401, nil, good))
	if err != nil || dr.MacaroonPath != "/" || dr.CookieNameSuffix != "auth" || !bytes.Equal(dr.Macaroon.M().Id(), m.M().Id()) {
		t.Fatalf("good answer: %+v, %v", dr, err)
	}
}

// TestDischargeRequiredRoundTrip: what the writer writes, the parser reads,
// and the Python-style lower-case code/message are accepted too.
func TestDischargeRequiredRoundTrip(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	r := httptest.NewRequest("PUT", "/v1/client/x", nil)
	r.Header.Set(BakeryProtocolHeader, "3")
	w := httptest.NewRecorder()
	if err := WriteDischargeRequired(w, r, DischargeRequired{Macaroon: m, MacaroonPath: "/v1/", CookieNameSuffix: "lp-x"}); err != nil {
		t.Fatal(err)
	}
	dr, err := ParseDischargeRequired(w.Result())
	if err != nil {
		t.Fatal(err)
	}
	if dr.MacaroonPath != "/v1/" || dr.CookieNameSuffix != "lp-x" || dr.Message != DischargeRequiredCode {
		t.Fatalf("round trip: %+v", dr)
	}
	if len(dr.Macaroon.M().Caveats()) != 2 || dr.Macaroon.Version() != bakery.Version3 {
		t.Fatal("macaroon changed in the round trip")
	}
}

// TestDischargeRequiredRefusesHostileLocation: a server hands the client a
// macaroon whose third-party caveat points at a location that is not
// allow-listed. The client refuses before contacting anyone.
func TestDischargeRequiredRefusesHostileLocation(t *testing.T) {
	f, srv, dc := tlsFixture(t)
	var hits atomic.Int64
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	// A service that pins the hostile location (the key does not matter:
	// the client must not get as far as sending the caveat).
	hostile, err := NewService("https://lpsec.example", f.svc.key, f.store,
		WithThirdParty(evil.URL, &f.tpKey.Public), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	m, err := hostile.MintResource(context.Background(), evil.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = dc.DischargeRequired(context.Background(), answer(401, nil, dischargeBody(t, m, "/", "auth")))
	if !errors.Is(err, ErrLocationNotAllowed) || hits.Load() != 0 {
		t.Fatalf("hostile location: %v, %d requests to it", err, hits.Load())
	}
	// The allow-listed one goes through and verifies.
	good, err := f.svc.MintResource(context.Background(), srv.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	ms, _, err := dc.DischargeRequired(context.Background(), answer(401, nil, dischargeBody(t, good, "/", "auth")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(context.Background(), []Slice{ms}, opRegister); err != nil {
		t.Fatal(err)
	}
}

// TestDischargeClientWithHTTPBakeryDischarger: lpsec's client against the
// Go bakery's own discharger (bakery.Discharge served by
// httpbakery.Discharger), granting and refusing.
func TestDischargeClientWithHTTPBakeryDischarger(t *testing.T) {
	f := newFixture(t)
	d := httpbakery.NewDischarger(httpbakery.DischargerParams{
		Key: f.tpKey,
		Checker: httpbakery.ThirdPartyCaveatCheckerFunc(func(ctx context.Context, req *http.Request, info *bakery.ThirdPartyCaveatInfo, _ *httpbakery.DischargeToken) ([]checkers.Caveat, error) {
			if string(info.Condition) != "entitled" {
				return nil, httpbakery.ErrPermissionDenied
			}
			return []checkers.Caveat{checkers.TimeBeforeCaveat(f.clock.Now().Add(time.Minute))}, nil
		}),
	})
	mux := http.NewServeMux()
	d.AddMuxHandlers(mux, "/")
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	svc, err := NewService("https://lpsec.example", f.svc.key, f.store,
		WithThirdParty(srv.URL, &f.tpKey.Public), WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := NewDischargeClient([]string{srv.URL}, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.MintResource(context.Background(), srv.URL, "entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := dc.DischargeAll(context.Background(), m)
	if err != nil {
		t.Fatalf("discharge from httpbakery.Discharger: %v", err)
	}
	if _, err := svc.Verify(context.Background(), []Slice{ms}, opRegister); err != nil {
		t.Fatal(err)
	}
	refused, err := svc.MintResource(context.Background(), srv.URL, "not-entitled", 0, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.DischargeAll(context.Background(), refused); !errors.Is(err, ErrDenied) {
		t.Fatalf("refused by httpbakery.Discharger: %v, want ErrDenied", err)
	}
}

// TestDecodeSliceAcceptsBakeryJSON: the login response's bakery JSON form,
// base64-encoded as the examples README says, verifies.
func TestDecodeSliceAcceptsBakeryJSON(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead)
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{b64std(js), b64url(js)} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Macaroon "+enc)
		g, err := f.svc.VerifyRequest(context.Background(), r, opAdminRead)
		if err != nil || g.User != "alice" {
			t.Fatalf("bakery JSON form: %+v, %v", g, err)
		}
	}
	// The bakery form goes through ParseMacaroon's checks: null inside is refused.
	if _, err := DecodeSlice(b64std([]byte(`{"m":null,"v":3}`))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bakery form with null macaroon: %v", err)
	}
	_ = macaroon.Slice{}
}

// FuzzParseDischargeRequired: any body, no panic, only documented errors,
// and an accepted answer always carries a bounded version 3 macaroon.
func FuzzParseDischargeRequired(f *testing.F) {
	fx := newFixture(f)
	m := fx.resource(f, "entitled")
	f.Add([]byte(dischargeBody(f, m, "/", "auth")))
	f.Add([]byte(dischargeBody(f, m, "../../", "")))
	f.Add([]byte(`{"Code":"macaroon discharge required","Info":{"Macaroon":null}}`))
	f.Add([]byte(`{"Code":"macaroon discharge required","Info":{"Macaroon":{"m":null}}}`))
	f.Add([]byte(`{"code":"macaroon discharge required","info":{"macaroon":{}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dr, err := ParseDischargeRequired(answer(401, nil, string(body)))
		if err != nil {
			if dr != nil {
				t.Fatal("result with an error")
			}
			for _, want := range []error{ErrNotDischargeRequired, ErrMalformed, ErrProtocolVersion} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		if dr.Macaroon == nil || dr.Macaroon.Version() != bakery.Version3 || len(dr.Macaroon.M().Caveats()) > MaxCaveats {
			t.Fatalf("accepted %+v", dr)
		}
	})
}
