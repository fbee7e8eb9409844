package macaroon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
	"gopkg.in/macaroon.v2"
)

func TestRequestMacaroonsForms(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead).M()
	enc, err := EncodeSlice(macaroon.Slice{m})
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := macaroon.Slice{m}.MarshalBinary()
	httpbakeryCookie, err := httpbakery.NewCookie(nil, macaroon.Slice{m})
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]func(r *http.Request){
		"Authorization Macaroon":          func(r *http.Request) { r.Header.Set("Authorization", "Macaroon "+enc) },
		"Authorization lower-case scheme": func(r *http.Request) { r.Header.Set("Authorization", "macaroon "+enc) },
		"Authorization 1*SP and OWS":      func(r *http.Request) { r.Header.Set("Authorization", " MACAROON   "+enc+" ") },
		"Authorization binary std base64": func(r *http.Request) {
			r.Header.Set("Authorization", "Macaroon "+base64.StdEncoding.EncodeToString(bin))
		},
		"Macaroons header":  func(r *http.Request) { r.Header.Set("Macaroons", enc) },
		"httpbakery cookie": func(r *http.Request) { r.AddCookie(httpbakeryCookie) },
		"single macaroon JSON object form": func(r *http.Request) {
			j, _ := json.Marshal(m)
			r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString(j))
		},
	}
	for name, set := range forms {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			set(r)
			g, err := f.svc.VerifyRequest(context.Background(), r, opAdminRead)
			if err != nil || g.User != "alice" {
				t.Fatalf("%+v, %v", g, err)
			}
		})
	}
}

func TestRequestMacaroonsHostile(t *testing.T) {
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead).M()
	enc, _ := EncodeSlice(macaroon.Slice{m})
	many := macaroon.Slice{}
	for range MaxMacaroonsPerSlice + 1 {
		many = append(many, m)
	}
	manyJSON, _ := json.Marshal(many)
	cases := map[string]struct {
		set  func(r *http.Request)
		want error
	}{
		"nothing":               {func(*http.Request) {}, ErrMissing},
		"other auth scheme":     {func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+enc) }, ErrMissing},
		"oversized header":      {func(r *http.Request) { r.Header.Set("Macaroons", strings.Repeat("A", MaxEncodedBytes+1)) }, ErrMalformed},
		"too many values":       {func(r *http.Request) { r.Header["Macaroons"] = []string{enc, enc, enc, enc, enc} }, ErrMalformed},
		"too many cookies":      {func(r *http.Request) { r.Header.Set("Cookie", strings.Repeat("macaroon-x="+enc+"; ", MaxSlices+1)) }, ErrMalformed},
		"not base64":            {func(r *http.Request) { r.Header.Set("Macaroons", "***") }, ErrMalformed},
		"empty value":           {func(r *http.Request) { r.Header.Set("Authorization", "Macaroon ") }, ErrMalformed},
		"base64 of garbage":     {func(r *http.Request) { r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString([]byte("garbage"))) }, ErrMalformed},
		"json null element":     {func(r *http.Request) { r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString([]byte("[null]"))) }, ErrMalformed},
		"json empty array":      {func(r *http.Request) { r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString([]byte("[]"))) }, ErrMalformed},
		"too many in one slice": {func(r *http.Request) { r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString(manyJSON)) }, ErrMalformed},
		"truncated binary": {func(r *http.Request) {
			b, _ := m.MarshalBinary()
			r.Header.Set("Macaroons", base64.StdEncoding.EncodeToString(b[:len(b)-3]))
		}, ErrMalformed},
		"location on a first-party caveat": {func(r *http.Request) {
			data, _ := json.Marshal(macaroon.Slice{withCaveatLocation(t, m, 1, testTP)})
			r.Header.Set("Macaroons", base64.RawURLEncoding.EncodeToString(data))
		}, ErrMalformed},
		"bad one spoils the rest": {func(r *http.Request) { r.Header["Macaroons"] = []string{enc, "***"} }, ErrMalformed},
		// The Authorization header rules every lpsec package shares.
		"two authorization headers":    {func(r *http.Request) { r.Header["Authorization"] = []string{"Macaroon " + enc, "Macaroon " + enc} }, ErrMalformed},
		"other scheme beside macaroon": {func(r *http.Request) { r.Header["Authorization"] = []string{"Basic YTpi", "Macaroon " + enc} }, ErrMalformed},
		"tab after scheme":             {func(r *http.Request) { r.Header.Set("Authorization", "Macaroon\t"+enc) }, ErrMalformed},
		"crlf after credentials":       {func(r *http.Request) { r.Header.Set("Authorization", "Macaroon "+enc+"\r\nX: y") }, ErrMalformed},
		"two credentials":              {func(r *http.Request) { r.Header.Set("Authorization", "Macaroon "+enc+" "+enc) }, ErrMalformed},
		"oversized authorization": {func(r *http.Request) {
			r.Header.Set("Authorization", "Macaroon "+strings.Repeat("A", MaxEncodedBytes+64))
		}, ErrMalformed},
		"scheme only": {func(r *http.Request) { r.Header.Set("Authorization", "Macaroon") }, ErrMalformed},
	}
	for name, c := range cases {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			c.set(r)
			if _, err := f.svc.VerifyRequest(context.Background(), r, opAdminRead); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// Version 3 third-party caveats keep their encrypted payload beside the
// macaroon: the bakery JSON form carries it, the binary form drops it and
// the caveat can then no longer be discharged.
func TestBakeryJSONKeepsThirdPartyPayload(t *testing.T) {
	f := newFixture(t)
	m := f.resource(t, "entitled")
	rec := httptest.NewRecorder()
	if err := WriteMacaroon(rec, http.StatusOK, m); err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Fatal("content type")
	}
	m2, err := ParseMacaroon(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ms := f.discharge(t, m2)
	if _, err := f.svc.Verify(context.Background(), []macaroon.Slice{ms}, opRegister); err != nil {
		t.Fatalf("after JSON round trip: %v", err)
	}

	bin, _ := m.M().MarshalBinary()
	var raw macaroon.Macaroon
	if err := raw.UnmarshalBinary(bin); err != nil {
		t.Fatal(err)
	}
	lossy, err := bakery.NewLegacyMacaroon(&raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bakery.DischargeAll(context.Background(), lossy, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
		return f.dis.Discharge(ctx, nil, cav.Id, payload)
	})
	if err == nil {
		t.Fatal("binary round trip kept the payload: the doc's warning is wrong")
	}
}

func TestParseMacaroonHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"null":      "null",
		"array":     "[]",
		"oversized": `{"m":"` + strings.Repeat("a", MaxEncodedBytes) + `"}`,
		"no id":     `{"m":{"s64":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"v":3}`,
		"garbage":   `{"m":{"c":[{"i":1}]}}`,
	} {
		if _, err := ParseMacaroon([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
