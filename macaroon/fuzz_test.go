package macaroon

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"gopkg.in/macaroon.v2"
)

func seedVectors(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSpace(string(data)))
	}
}

// FuzzVerifyHeader feeds raw header bytes to verification: it must never
// panic and must always fail with one of the documented errors.
func FuzzVerifyHeader(f *testing.F) {
	fx := newFixture(f)
	login := fx.login(f, "alice", opAdminRead)
	enc, _ := EncodeSlice(macaroon.Slice{login.M()})
	f.Add(enc)
	res, _ := EncodeSlice(fx.discharge(f, fx.resource(f, "entitled")))
	f.Add(res)
	bin, _ := login.M().MarshalBinary()
	f.Add(base64.StdEncoding.EncodeToString(bin))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`[{"i":"","s64":"AAAA"}]`)))
	f.Add("")
	seedVectors(f, "testdata/fail_verify_*")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Macaroons", header)
		g, err := fx.svc.VerifyRequest(context.Background(), r, opAdminRead)
		if err == nil {
			if g == nil || g.User == "" {
				t.Fatalf("grant %+v without identity for an admin op", g)
			}
			return
		}
		for _, want := range []error{ErrMissing, ErrMalformed, ErrExpired, ErrDenied, ErrDischargeRequired, ErrUnknownRootKey} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}

// FuzzDischarge feeds raw form bodies to the discharge endpoint: it must
// never panic and must answer 200, 400 or 403 with a JSON body.
func FuzzDischarge(f *testing.F) {
	fx := newFixture(f)
	m := fx.resource(f, "entitled")
	cav, payload := thirdPartyCaveat(f, m)
	b64 := base64.RawURLEncoding.EncodeToString
	f.Add("id64=" + b64(cav.Id) + "&caveat64=" + b64(payload))
	f.Add("id64=" + b64(sealCaveat(f, &fx.tpKey.Public, []byte("\x03\x01k\x00entitled"))))
	f.Add("id=e30%3D")
	f.Add("")
	// The discharge crashers are sealed to the testdata key; reseal the
	// seeds' shape for this discharger so the fuzzer starts near them.
	f.Add("id64=" + b64(sealCaveat(f, &fx.tpKey.Public, []byte("\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01padding"))))
	seedVectors(f, "testdata/fail_discharge_*")
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/discharge", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		fx.dis.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if !strings.HasPrefix(rec.Body.String(), "{") {
			t.Fatalf("non-JSON body %q", rec.Body)
		}
	})
}

// FuzzParseMacaroon feeds bakery JSON (what a discharger returns and what
// clients store) to ParseMacaroon.
func FuzzParseMacaroon(f *testing.F) {
	fx := newFixture(f)
	data, _ := fx.resource(f, "entitled").MarshalJSON()
	f.Add(string(data))
	f.Add("null")
	f.Add(`{"m":null}`)
	seedVectors(f, "testdata/fail_parse_*")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMacaroon([]byte(in))
		if err == nil {
			var _ *bakery.Macaroon = m
			if m == nil || m.M() == nil {
				t.Fatal("nil macaroon without error")
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("undocumented error %v", err)
		}
	})
}
