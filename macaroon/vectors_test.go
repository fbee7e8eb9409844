package macaroon

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"golang.org/x/crypto/nacl/box"
	"gopkg.in/macaroon.v2"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite the generated testdata vectors")

// The crashers of go-macaroon-bakery v3.0.2 that lpsec guards against.
// fail_verify_* hold a Macaroons header value, fail_discharge_* a
// /discharge form body for the discharger whose key is in
// testdata/discharger_key.json. Each vector must still crash the raw
// bakery (so the guard is still needed and the vector still means
// something) and must fail cleanly in lpsec.

func TestGenerateVectors(t *testing.T) {
	if !*updateVectors {
		t.Skip("run with -update-vectors to regenerate testdata")
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	header := func(id []byte) string {
		m, err := macaroon.New(make([]byte, 32), id, "https://lpsec.example", macaroon.V2)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(macaroon.Slice{m})
		return base64.RawURLEncoding.EncodeToString(data)
	}
	// oven.decodeMacaroonId: empty id (id[0] out of range).
	write("fail_verify_empty_id.txt", header(nil))
	// oven.decodeMacaroonId: version-2 id shorter than 1+16 bytes.
	write("fail_verify_v2_short_id.txt", header([]byte{2}))
	// The same after the 'A' base64 branch ("AgA" decodes to 02 00).
	write("fail_verify_v2_short_id_base64.txt", header([]byte("AgA")))

	// bakery.Macaroon.UnmarshalJSON: the literal null reaches
	// NewLegacyMacaroon(nil). fail_parse_* hold bakery JSON for ParseMacaroon.
	write("fail_parse_json_null.txt", "null")

	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kj, _ := MarshalKeyPair(key)
	write("discharger_key.json", string(kj))
	// codec.decodeCaveatV1: JSON caveat ("e30=" is base64 "{}") without a
	// ThirdPartyPublicKey: nil dereference.
	write("fail_discharge_v1_nil_public_key.txt", url.Values{"id": {"e30="}}.Encode())
	// codec.decodeSecretPartV2V3: root-key length 2^64-1 wraps the check
	// uint64(n)+l > len(data) and the slice expression panics. Only the
	// discharger's public key is needed to build it.
	secret := []byte{byte(bakery.Version3)}
	secret = binary.AppendUvarint(secret, ^uint64(0))
	secret = append(secret, "padding-padding"...)
	write("fail_discharge_root_key_length_overflow.txt", url.Values{"id64": {base64.RawURLEncoding.EncodeToString(sealCaveat(t, &key.Public, secret))}}.Encode())
	// The same overflow in the namespace length field.
	secret = []byte{byte(bakery.Version3), 1, 'k'}
	secret = binary.AppendUvarint(secret, ^uint64(0))
	secret = append(secret, "padding-padding"...)
	write("fail_discharge_namespace_length_overflow.txt", url.Values{"id64": {base64.RawURLEncoding.EncodeToString(sealCaveat(t, &key.Public, secret))}}.Encode())
}

// sealCaveat encrypts a third-party caveat secret part to pub the way the
// bakery does (version 3 layout), with a throwaway first-party key.
func sealCaveat(t testing.TB, pub *bakery.PublicKey, secret []byte) []byte {
	t.Helper()
	fpPub, fpPriv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var nonce [24]byte
	rand.Read(nonce[:])
	out := []byte{byte(bakery.Version3)}
	out = append(out, pub.Key[:4]...)
	out = append(out, fpPub[:]...)
	out = append(out, nonce[:]...)
	tp := [32]byte(pub.Key)
	return box.Seal(out, secret, &nonce, &tp, fpPriv)
}

func readVector(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func vectorDischargerKey(t testing.TB) *bakery.KeyPair {
	t.Helper()
	k, err := ParseKeyPair([]byte(readVector(t, "testdata/discharger_key.json")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

func TestVerifyCrashersFromTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/fail_verify_*")
	if len(files) == 0 {
		t.Fatal("no fail_verify_* vectors")
	}
	f := newFixture(t)
	oven := bakery.NewOven(bakery.OvenParams{RootKeyStoreForOps: func([]bakery.Op) bakery.RootKeyStore { return f.store }})
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			v := readVector(t, file)
			raw, _ := macaroon.Base64Decode([]byte(v))
			var ms macaroon.Slice
			if err := json.Unmarshal(raw, &ms); err != nil {
				t.Fatal(err)
			}
			if !panics(func() { _, _, _ = oven.VerifyMacaroon(context.Background(), ms) }) {
				t.Errorf("the raw bakery no longer panics on %s: the guard may be obsolete", file)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Macaroons", v)
			if _, err := f.svc.VerifyRequest(context.Background(), r, opAdminRead); !errors.Is(err, ErrMalformed) {
				t.Fatalf("lpsec: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDischargeCrashersFromTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/fail_discharge_*")
	if len(files) == 0 {
		t.Fatal("no fail_discharge_* vectors")
	}
	key := vectorDischargerKey(t)
	d, err := NewDischarger(key, func(context.Context, *http.Request, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			body := readVector(t, file)
			form, err := url.ParseQuery(body)
			if err != nil {
				t.Fatal(err)
			}
			id := []byte(form.Get("id"))
			if s := form.Get("id64"); s != "" {
				id, _ = macaroon.Base64Decode([]byte(s))
			}
			if !panics(func() {
				_, _ = bakery.Discharge(context.Background(), bakery.DischargeParams{
					Id: id, Key: key,
					Checker: bakery.ThirdPartyCaveatCheckerFunc(func(context.Context, *bakery.ThirdPartyCaveatInfo) ([]checkers.Caveat, error) { return nil, nil }),
				})
			}) {
				t.Errorf("the raw bakery no longer panics on %s: the guard may be obsolete", file)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/discharge", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			d.ServeHTTP(rec, req)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"Code":"bad request"`) {
				t.Fatalf("lpsec: %d %s, want a clean 400", rec.Code, rec.Body)
			}
		})
	}
}

func TestParseCrashersFromTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/fail_parse_*")
	if len(files) == 0 {
		t.Fatal("no fail_parse_* vectors")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			v := readVector(t, file)
			if !panics(func() { var m bakery.Macaroon; _ = json.Unmarshal([]byte(v), &m) }) {
				t.Errorf("the raw bakery no longer panics on %s: the guard may be obsolete", file)
			}
			if !panics(func() { _, _ = parseMacaroon([]byte(v)) }) {
				t.Errorf("parseMacaroon without the guard no longer panics")
			}
			if _, err := ParseMacaroon([]byte(v)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("lpsec: %v, want ErrMalformed", err)
			}
		})
	}
}
