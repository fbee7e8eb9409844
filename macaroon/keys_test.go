package macaroon

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
)

func TestKeyPairRoundTrip(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	data, err := MarshalKeyPair(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKeyPair(data)
	if err != nil || *k2 != *k {
		t.Fatalf("%v %v", k2, err)
	}
	// The bakery reads the same form.
	var bk bakery.KeyPair
	if err := json.Unmarshal(data, &bk); err != nil || bk != *k {
		t.Fatalf("bakery cannot read it: %v", err)
	}
}

func TestParseKeyPairHostile(t *testing.T) {
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	mismatch, _ := json.Marshal(&bakery.KeyPair{Public: b.Public, Private: a.Private})
	pubOnly, _ := json.Marshal(map[string]string{"public": a.Public.String()})
	for name, in := range map[string][]byte{
		"public key of another pair": mismatch,
		"no private key":             pubOnly,
		"not JSON":                   []byte("public=x"),
		"short key":                  []byte(`{"public":"AAAA","private":"AAAA"}`),
		"oversized":                  bytes.Repeat([]byte(" "), maxKeyJSON+1),
		"empty":                      nil,
	} {
		if _, err := ParseKeyPair(in); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
	for _, in := range []string{"", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "!!"} {
		if _, err := ParsePublicKey(in); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKey(%q): %v", in, err)
		}
	}
	if err := CheckKeyPair(nil); !errors.Is(err, ErrInvalidKey) {
		t.Error("nil pair accepted")
	}
}

// testdata/good_ed25519_to_x25519.json holds known answers computed by
// libsodium (crypto_sign_ed25519_sk_to_curve25519 and
// crypto_sign_ed25519_pk_to_curve25519, through PyNaCl).
func TestKeyPairFromEd25519KnownAnswers(t *testing.T) {
	data, err := os.ReadFile("testdata/good_ed25519_to_x25519.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct{ Seed, X25519Private, X25519Public string }
	if err := json.Unmarshal(data, &vectors); err != nil || len(vectors) == 0 {
		t.Fatal(err)
	}
	for _, v := range vectors {
		seed, _ := hex.DecodeString(v.Seed)
		k, err := KeyPairFromEd25519(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(k.Private.Key[:]) != v.X25519Private || hex.EncodeToString(k.Public.Key[:]) != v.X25519Public {
			t.Errorf("seed %s: got %x / %x", v.Seed, k.Private.Key, k.Public.Key)
		}
		if err := CheckKeyPair(k); err != nil {
			t.Error(err)
		}
	}
	if _, err := KeyPairFromEd25519(make([]byte, 10)); !errors.Is(err, ErrInvalidKey) {
		t.Error("short Ed25519 key accepted")
	}
}
