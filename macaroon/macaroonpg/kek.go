package macaroonpg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// KeyEncryptionKey is the operator's AES-256 key that encrypts root keys at
// rest in the store, so that a copy of the database cannot mint
// or verify macaroons. Keep it outside the database (a secret file or the
// environment); every instance sharing the database needs the same one.
//
// A KeyEncryptionKey never prints its secret: fmt, slog and %#v show only
// its public identifier.
type KeyEncryptionKey struct {
	aead cipher.AEAD
	id   string
}

// kekIDLabel domain-separates the public KEK identifier from any other use
// of the key.
const kekIDLabel = "lpsec macaroon key-encryption-key id v1"

// rootKeyAADLabel versions the additional data bound into every ciphertext.
const rootKeyAADLabel = "lpsec macaroon root key v1\x00"

// NewKeyEncryptionKey returns a key-encryption key made from exactly 32
// secret bytes. The bytes are not retained beyond the AES key schedule.
func NewKeyEncryptionKey(key []byte) (*KeyEncryptionKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: need 32 bytes, got %d", macaroon.ErrInvalidKey, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", macaroon.ErrInvalidKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", macaroon.ErrInvalidKey, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(kekIDLabel))
	return &KeyEncryptionKey{aead: aead, id: hex.EncodeToString(mac.Sum(nil)[:8])}, nil
}

// ParseKeyEncryptionKey parses a key-encryption key written as standard or
// URL-safe base64 of 32 bytes (padding optional), as printed by
// `openssl rand -base64 32`. Surrounding white space is ignored.
func ParseKeyEncryptionKey(s string) (*KeyEncryptionKey, error) {
	s = strings.TrimSpace(s)
	// Base64 of 32 bytes is 43 or 44 characters; refuse anything else before
	// decoding so a wrong file (a PEM, a whole config) is not half-read.
	if len(s) != 43 && len(s) != 44 {
		return nil, fmt.Errorf("%w: want base64 of 32 bytes (44 characters), got %d characters", macaroon.ErrInvalidKey, len(s))
	}
	s = strings.TrimRight(s, "=")
	var key []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		key, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		// The decoder's message may quote an input byte: do not echo it.
		return nil, fmt.Errorf("%w: not valid base64", macaroon.ErrInvalidKey)
	}
	k, err := NewKeyEncryptionKey(key)
	clear(key)
	return k, err
}

// ID returns the key's public identifier: 16 hex digits of an HMAC of a
// fixed label under the key. It is stored beside every ciphertext so that a
// store given the wrong key fails with ErrKeyEncryptionKeyMismatch instead
// of reporting tampering, and reveals nothing about the key.
func (k KeyEncryptionKey) ID() string { return k.id }

// String returns "KeyEncryptionKey(<id>)", never the secret.
func (k KeyEncryptionKey) String() string { return "KeyEncryptionKey(" + k.id + ")" }

// Format prints String for every verb, so no verb (%#v, %d, %x...) can
// reach the AES key schedule through reflection.
func (k KeyEncryptionKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue keeps the secret out of slog records.
func (k KeyEncryptionKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// rootKeyAAD binds a ciphertext to its row: swapping ciphertexts between
// rows (or ids) makes decryption fail.
func rootKeyAAD(id []byte) []byte {
	aad := make([]byte, 0, len(rootKeyAADLabel)+len(id))
	return append(append(aad, rootKeyAADLabel...), id...)
}

// seal encrypts a root key for the row with the given id: nonce || ciphertext.
func (k KeyEncryptionKey) seal(id, rootKey []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(rootKey)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("macaroonpg: encrypt root key: %w", err)
	}
	return k.aead.Seal(nonce, nonce, rootKey, rootKeyAAD(id)), nil
}

// open decrypts what seal made for the same id.
func (k KeyEncryptionKey) open(id, sealed []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) != ns+core.RootKeyLen+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext has %d bytes", ErrRootKeyCorrupt, len(sealed))
	}
	key, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], rootKeyAAD(id))
	if err != nil {
		return nil, ErrRootKeyCorrupt
	}
	return key, nil
}
