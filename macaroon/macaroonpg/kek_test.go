package macaroonpg

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/testenv"
	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

func testKEK(t testing.TB) *KeyEncryptionKey {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyEncryptionKeyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"aes128_16_bytes", make([]byte, 16)},
		{"aes192_24_bytes", make([]byte, 24)},
		{"31_bytes", make([]byte, 31)},
		{"33_bytes", make([]byte, 33)},
		{"huge", make([]byte, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeyEncryptionKey(tc.raw); !errors.Is(err, macaroon.ErrInvalidKey) {
				t.Fatalf("err = %v; want macaroon.ErrInvalidKey", err)
			}
		})
	}
}

func TestParseKeyEncryptionKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // exercises +/ vs -_
	want, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := ParseKeyEncryptionKey(s)
		if err != nil || k.ID() != want.ID() {
			t.Errorf("ParseKeyEncryptionKey(%q) = %v, %v; want key %s", s, k, err, want.ID())
		}
	}
	secret := base64.StdEncoding.EncodeToString(raw)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"hex_64_chars", hex.EncodeToString(raw)},
		{"base64_of_16_bytes", base64.StdEncoding.EncodeToString(raw[:16])},
		{"base64_of_33_bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1))},
		{"invalid_character", "!" + secret[1:]},
		{"mixed_alphabets", "+" + secret[1:42] + "_="},
		{"pem_block", "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyEncryptionKey(tc.in)
			if !errors.Is(err, macaroon.ErrInvalidKey) {
				t.Fatalf("err = %v; want macaroon.ErrInvalidKey", err)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[1:9]) {
				t.Fatal("error echoes the input")
			}
		})
	}
}

// TestKeyEncryptionKeyOpenSSL uses openssl as the peer: it generates the key
// as operators are told to, and computes the public KEK id independently.
func TestKeyEncryptionKeyOpenSSL(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	out, err := exec.Command(openssl, "rand", "-base64", "32").Output()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeyEncryptionKey(string(out))
	if err != nil {
		t.Fatalf("openssl rand -base64 32 output rejected: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
	cmd := exec.Command(openssl, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(raw))
	cmd.Stdin = strings.NewReader(kekIDLabel)
	mac, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(mac))
	if want := f[len(f)-1][:16]; k.ID() != want {
		t.Fatalf("KEK id = %s; openssl HMAC-SHA256 says %s", k.ID(), want)
	}
}

func TestKeyEncryptionKeyNeverPrintsSecret(t *testing.T) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	k, err := NewKeyEncryptionKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "kek", k)
	outs := []string{logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k), fmt.Sprintf(verb, []any{k}))
	}
	for _, o := range outs {
		if strings.Contains(strings.ToLower(o), hex.EncodeToString(raw)[:12]) || strings.Contains(o, base64.StdEncoding.EncodeToString(raw)[:12]) {
			t.Fatalf("KEK secret printed: %s", o)
		}
	}
}

func TestRootKeySealTampering(t *testing.T) {
	k := testKEK(t)
	id := bytes.Repeat([]byte{7}, core.RootKeyIDLen)
	otherID := bytes.Repeat([]byte{8}, core.RootKeyIDLen)
	rootKey := bytes.Repeat([]byte{9}, core.RootKeyLen)
	sealed, err := k.seal(id, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.open(id, sealed); err != nil || !bytes.Equal(got, rootKey) {
		t.Fatalf("round trip: %v", err)
	}
	if bytes.Contains(sealed, rootKey[:8]) {
		t.Fatal("plaintext in ciphertext")
	}
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 0x80; return b }
	for _, tc := range []struct {
		name   string
		id     []byte
		sealed []byte
		k      *KeyEncryptionKey
	}{
		{"flipped_nonce", id, flip(0), k},
		{"flipped_ciphertext", id, flip(13), k},
		{"flipped_tag", id, flip(len(sealed) - 1), k},
		{"truncated", id, sealed[:len(sealed)-1], k},
		{"extended", id, append(bytes.Clone(sealed), 0), k},
		{"empty", id, nil, k},
		{"moved_to_other_id", otherID, sealed, k},
		{"other_kek", id, sealed, testKEK(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.open(tc.id, tc.sealed)
			if !errors.Is(err, ErrRootKeyCorrupt) || got != nil {
				t.Fatalf("open = %x, %v; want ErrRootKeyCorrupt", got, err)
			}
		})
	}
}

func FuzzParseKeyEncryptionKey(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8")
	f.Add("")
	f.Add("====================================================")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeyEncryptionKey(s)
		if (k == nil) == (err == nil) {
			t.Fatalf("key %v and error %v", k, err)
		}
		if err != nil && !errors.Is(err, macaroon.ErrInvalidKey) {
			t.Fatalf("error %v does not wrap macaroon.ErrInvalidKey", err)
		}
	})
}

// FuzzOpen feeds arbitrary ids and ciphertexts to open: never a panic,
// never a key for anything but the sealed pair.
func FuzzOpen(f *testing.F) {
	kek := testKEK(f)
	id := bytes.Repeat([]byte{3}, core.RootKeyIDLen)
	sealed, err := kek.seal(id, make([]byte, core.RootKeyLen))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte("0"), sealed)
	f.Add(bytes.Repeat([]byte{0}, core.RootKeyIDLen), sealed[:20])
	f.Add(id, sealed)
	f.Fuzz(func(t *testing.T, b, sl []byte) {
		if _, err := kek.open(b, sl); err == nil && !(bytes.Equal(b, id) && bytes.Equal(sl, sealed)) {
			t.Fatal("open accepted a forged ciphertext")
		}
	})
}
