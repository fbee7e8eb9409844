package macaroon

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/json"
	"fmt"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"golang.org/x/crypto/curve25519"
)

// maxKeyJSON bounds ParseKeyPair input: the bakery form is about 100 bytes.
const maxKeyJSON = 4096

// GenerateKey returns a fresh bakery key pair (X25519, for NaCl box).
func GenerateKey() (*bakery.KeyPair, error) {
	k, err := bakery.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("macaroon: generating key: %w", err)
	}
	return k, nil
}

// MarshalKeyPair returns the key pair in the bakery's JSON form,
// {"public":"<base64>","private":"<base64>"}. The result is secret.
func MarshalKeyPair(k *bakery.KeyPair) ([]byte, error) {
	if err := CheckKeyPair(k); err != nil {
		return nil, err
	}
	return json.Marshal(k)
}

// ParseKeyPair parses the bakery's JSON form of a key pair (as written by
// MarshalKeyPair, the Go bakery and the Python macaroonbakery) and checks
// that the public key belongs to the private key.
func ParseKeyPair(data []byte) (*bakery.KeyPair, error) {
	if len(data) > maxKeyJSON {
		return nil, fmt.Errorf("%w: key pair JSON longer than %d bytes", ErrInvalidKey, maxKeyJSON)
	}
	var k bakery.KeyPair
	if err := json.Unmarshal(data, &k); err != nil {
		// The bakery's message never contains key material beyond its
		// own field names, but keep ours fixed anyway.
		return nil, fmt.Errorf("%w: cannot parse key pair JSON", ErrInvalidKey)
	}
	if err := CheckKeyPair(&k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ParsePublicKey parses a public key in the bakery's base64 text form, as
// served by a discharger's /publickey endpoint.
func ParsePublicKey(text string) (*bakery.PublicKey, error) {
	var pk bakery.PublicKey
	if err := pk.UnmarshalText([]byte(text)); err != nil {
		return nil, fmt.Errorf("%w: cannot parse public key", ErrInvalidKey)
	}
	var zero [bakery.KeyLen]byte
	if pk.Key == zero {
		return nil, fmt.Errorf("%w: all-zero public key", ErrInvalidKey)
	}
	return &pk, nil
}

// CheckKeyPair reports whether k is a usable key pair: both halves present
// and the public key equal to X25519(private, basepoint).
func CheckKeyPair(k *bakery.KeyPair) error {
	if k == nil {
		return fmt.Errorf("%w: nil key pair", ErrInvalidKey)
	}
	var zero [bakery.KeyLen]byte
	if k.Private.Key == zero || k.Public.Key == zero {
		return fmt.Errorf("%w: missing public or private key", ErrInvalidKey)
	}
	pub, err := curve25519.X25519(k.Private.Key[:], curve25519.Basepoint)
	if err != nil {
		return fmt.Errorf("%w: private key is a low-order scalar", ErrInvalidKey)
	}
	if subtle.ConstantTimeCompare(pub, k.Public.Key[:]) != 1 {
		return fmt.Errorf("%w: public key does not match private key", ErrInvalidKey)
	}
	return nil
}

// KeyPairFromEd25519 derives a bakery key pair from an Ed25519 private key,
// for operators who already hold Ed25519 keys. The conversion is the one of
// libsodium's crypto_sign_ed25519_sk_to_curve25519: the X25519 private key
// is the clamped first half of SHA-512(seed) (the Ed25519 signing scalar),
// and the public key is the X25519 image of the base point, which equals the
// Montgomery form u = (1+y)/(1-y) of the Ed25519 public key
// (crypto_sign_ed25519_pk_to_curve25519).
//
// Use the derived key only with the bakery (NaCl box): reusing one secret
// for signatures and key agreement is safe for this pair of schemes, but it
// ties the two keys' lifetimes together.
func KeyPairFromEd25519(priv ed25519.PrivateKey) (*bakery.KeyPair, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key must be %d bytes", ErrInvalidKey, ed25519.PrivateKeySize)
	}
	h := sha512.Sum512(priv.Seed())
	var k bakery.KeyPair
	copy(k.Private.Key[:], h[:32])
	k.Private.Key[0] &= 248
	k.Private.Key[31] &= 127
	k.Private.Key[31] |= 64
	pub, err := curve25519.X25519(k.Private.Key[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	copy(k.Public.Key[:], pub)
	return &k, nil
}
