package macaroon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/lpsec/lpsec/internal/testenv"
)

// python finds /usr/bin/python3 with the macaroonbakery module (Debian
// python3-macaroonbakery), or skips (fails in CI).
func python(t *testing.T) string {
	t.Helper()
	py := testenv.LookPath(t, "/usr/bin/python3", "python3-macaroonbakery")
	if out, err := exec.Command(py, "-c", "import macaroonbakery.bakery, pymacaroons").CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("python3 cannot import macaroonbakery: %v\n%s", err, out)
		}
		t.Skipf("skipped: python3 cannot import macaroonbakery (install python3-macaroonbakery): %s", out)
	}
	return py
}

func runPython(t *testing.T, py, script string, in any, env ...string) string {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script)
	cmd.Dir = "testdata"
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1"), env...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func rawKeyJSON(t *testing.T, k *bakery.KeyPair) json.RawMessage {
	data, err := MarshalKeyPair(k)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lpsec mints a resource macaroon; the Python bakery, as the third party,
// discharges it; lpsec accepts the pair.
func TestInteropPythonDischargesLpsecMacaroon(t *testing.T) {
	py := python(t)
	f := newFixture(t)
	f.clock.t = time.Now() // Python stamps its discharge with the real clock.
	m := f.resource(t, "entitled")
	hdr := runPython(t, py, "interop_discharge.py", map[string]any{
		"macaroon": m, "third_party_key": rawKeyJSON(t, f.tpKey), "condition": "entitled",
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Macaroons", hdr)
	g, err := f.svc.VerifyRequest(context.Background(), r, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	if g.User != "" || !containsOp(g.Ops, opRegister) {
		t.Fatalf("grant %+v", g)
	}
}

// The Python bakery mints (under a root key that lpsec's store holds) and
// discharges a macaroon; lpsec verifies it.
func TestInteropPythonMintedMacaroonVerifies(t *testing.T) {
	py := python(t)
	f := newFixture(t)
	f.clock.t = time.Now()
	rootKey, storageID, err := f.store.RootKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	hdr := runPython(t, py, "interop_mint.py", map[string]any{
		"root_key":             base64.StdEncoding.EncodeToString(rootKey),
		"storage_id":           base64.StdEncoding.EncodeToString(storageID),
		"location":             "https://lpsec.example",
		"service_key":          rawKeyJSON(t, f.svc.key),
		"third_party_key":      rawKeyJSON(t, f.tpKey),
		"third_party_location": testTP,
		"condition":            "entitled",
		"entity":               opRegister.Entity,
		"action":               opRegister.Action,
		"expiry_unix":          expiry.Unix(),
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Macaroons", hdr)
	g, err := f.svc.VerifyRequest(context.Background(), r, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	// The grant expires with the earliest time-before: Python's 5-minute
	// discharge, before the primary's hour.
	if g.User != "" || !g.Expiry.After(time.Now()) || !g.Expiry.Before(expiry) {
		t.Fatalf("grant %+v, want expiry before %v", g, expiry)
	}
	// The same macaroon does not grant what Python did not mint.
	if _, err := f.svc.VerifyRequest(context.Background(), r, opAdminRead); err == nil {
		t.Fatal("granted an operation the Python oven did not put in the id")
	}
	// Revoking the lpsec-held root key kills it.
	f.store.Revoke(context.Background(), storageID)
	if _, err := f.svc.VerifyRequest(context.Background(), r, opRegister); err == nil {
		t.Fatal("verified after revocation")
	}
}

// The Python httpbakery client acquires the discharge from lpsec's
// Discharger over TLS: the /discharge endpoint speaks httpbakery.
func TestInteropPythonClientUsesDischarger(t *testing.T) {
	py := python(t)
	f, srv, _ := tlsFixture(t)
	f.clock.t = time.Now()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := f.svc.MintResource(context.Background(), srv.URL, "entitled", time.Hour, opRegister)
	if err != nil {
		t.Fatal(err)
	}
	hdr := runPython(t, py, "interop_http_client.py", map[string]any{"macaroon": m}, "REQUESTS_CA_BUNDLE="+ca)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Macaroons", hdr)
	if _, err := f.svc.VerifyRequest(context.Background(), r, opRegister); err != nil {
		t.Fatal(err)
	}
}

// KeyPairFromEd25519 agrees with libsodium (through PyNaCl) on a fresh key.
func TestInteropEd25519ConversionMatchesLibsodium(t *testing.T) {
	py := python(t)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := KeyPairFromEd25519(priv)
	if err != nil {
		t.Fatal(err)
	}
	script := `import sys; from nacl import bindings as b
sk = bytes.fromhex(sys.argv[1])
print(b.crypto_sign_ed25519_sk_to_curve25519(sk).hex(), b.crypto_sign_ed25519_pk_to_curve25519(sk[32:]).hex())`
	out, err := exec.Command(py, "-c", script, hex.EncodeToString(priv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(k.Private.Key[:]) + " " + hex.EncodeToString(k.Public.Key[:])
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("libsodium %s, lpsec %s", got, want)
	}
}

// TestInteropPythonDischargeRequired: the Python bakery's own
// discharge_required_response is accepted by ParseDischargeRequired, and
// Python's httpbakery.Error.from_dict reads what WriteDischargeRequired
// writes: code, path, cookie suffix and the same macaroon.
func TestInteropPythonDischargeRequired(t *testing.T) {
	py := python(t)
	f := newFixture(t)
	m := f.resource(t, "entitled")
	r := httptest.NewRequest("PUT", "/v1/client/x", nil)
	r.Header.Set(BakeryProtocolHeader, "3")
	w := httptest.NewRecorder()
	if err := WriteDischargeRequired(w, r, DischargeRequired{Macaroon: m}); err != nil {
		t.Fatal(err)
	}
	out := runPython(t, py, "interop_discharge_required.py", map[string]any{"macaroon": m, "lpsec_body": w.Body.String()})
	var res struct {
		Content string
		Headers map[string]string
		Parsed  struct {
			Code, Path, Suffix, ID64 string
			Version                  int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if p := res.Parsed; p.Code != DischargeRequiredCode || p.Path != "../../" || p.Suffix != "auth" || p.Version != 3 ||
		p.ID64 != base64.StdEncoding.EncodeToString(m.M().Id()) {
		t.Fatalf("Python reads lpsec's answer as %+v", p)
	}
	h := http.Header{}
	for k, v := range res.Headers {
		h.Set(k, v)
	}
	dr, err := ParseDischargeRequired(&http.Response{StatusCode: 401, Header: h, Body: io.NopCloser(strings.NewReader(res.Content))})
	if err != nil {
		t.Fatalf("Python's answer refused: %v\n%s", err, res.Content)
	}
	if !bytes.Equal(dr.Macaroon.M().Id(), m.M().Id()) || dr.MacaroonPath != "/" || dr.CookieNameSuffix != "auth" || dr.Message != "discharge required" {
		t.Fatalf("parsed Python's answer as %+v", dr)
	}
}

// The Python bakery narrows an lpsec login macaroon with its standard
// allow_caveat and deny_caveat: lpsec grants what is left and refuses the
// rest, so holders can attenuate with any bakery client.
func TestInteropPythonAttenuates(t *testing.T) {
	py := python(t)
	f := newFixture(t)
	m := f.login(t, "alice", opAdminRead, opAdminWrite)
	for _, c := range []struct {
		name        string
		allow, deny []string
		read, write bool
	}{
		{"allow read", []string{"read"}, nil, true, false},
		{"deny read", nil, []string{"read"}, false, true},
		{"allow both deny write", []string{"read", "write"}, []string{"write"}, true, false},
	} {
		in := map[string]any{"macaroon": m, "deny": c.deny}
		if c.allow != nil {
			in["allow"] = c.allow
		}
		hdr := runPython(t, py, "interop_attenuate.py", in)
		for _, op := range []struct {
			op   bakery.Op
			want bool
		}{{opAdminRead, c.read}, {opAdminWrite, c.write}} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Macaroons", hdr)
			g, err := f.svc.VerifyRequest(context.Background(), r, op.op)
			if op.want && (err != nil || g.User != "alice") {
				t.Errorf("%s: %s: %v, want granted to alice", c.name, op.op.Action, err)
			}
			if !op.want && !errors.Is(err, ErrDenied) {
				t.Errorf("%s: %s: %v, want ErrDenied", c.name, op.op.Action, err)
			}
		}
	}
}
