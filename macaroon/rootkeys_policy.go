package macaroon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
)

// Root-key defaults. A key mints for one rotation period and stays
// verifiable for MaxTTL after that, so that every macaroon minted with it
// (which lives at most MaxTTL) can be verified until it expires.
const (
	DefaultRootKeyRotationPeriod = 24 * time.Hour
	DefaultRootKeyMaxTTL         = 240 * time.Hour
	DefaultRootKeyCacheTTL       = 30 * time.Second
)

// rootKeyLen and rootKeyIDLen are fixed: Get rejects any other id length
// before touching storage, which bounds what an attacker-chosen id can cost.
const (
	rootKeyLen   = 32
	rootKeyIDLen = 16
)

var (
	// ErrRootKeyCorrupt means a stored root key failed authenticated
	// decryption or has the wrong shape: the row was altered or swapped with
	// another row's ciphertext.
	ErrRootKeyCorrupt = errors.New("macaroon: stored root key failed authentication (tampered or corrupt)")

	// ErrKeyEncryptionKeyMismatch means a stored root key was encrypted under
	// a different key-encryption key than the one this store was given.
	ErrKeyEncryptionKeyMismatch = errors.New("macaroon: root key was encrypted under a different key-encryption key")

	// ErrInvalidKeyEncryptionKey means the bytes given as a key-encryption key
	// are not 32 bytes (or not valid base64 of 32 bytes).
	ErrInvalidKeyEncryptionKey = errors.New("macaroon: invalid key-encryption key")

	// ErrInvalidRootKeyPolicy means a RootKeyPolicy has a negative or
	// inconsistent duration.
	ErrInvalidRootKeyPolicy = errors.New("macaroon: invalid root key policy")
)

// errRevokeMalformedID is what Revoke returns for an id that no store ever
// issues; it wraps bakery.ErrNotFound.
var errRevokeMalformedID = fmt.Errorf("macaroon: revoke root key: id must be %d bytes: %w", rootKeyIDLen, bakery.ErrNotFound)

// RootKeyPolicy says how a root-key store rotates, keeps and caches keys. The
// zero value is the production default: a new minting key every 24 hours,
// each kept for verification 240 hours past its last use for minting.
type RootKeyPolicy struct {
	// RotationPeriod is how long one key is used for minting before a new
	// one is made. Zero means DefaultRootKeyRotationPeriod.
	RotationPeriod time.Duration

	// MaxTTL is the longest lifetime of a macaroon minted with these keys;
	// it must be at least the Service's MaxTTL. A key is kept until
	// created + RotationPeriod + MaxTTL, then purged. Zero means
	// DefaultRootKeyMaxTTL.
	MaxTTL time.Duration

	// CacheTTL applies to the PostgreSQL store only: how long an instance
	// trusts a key it read from the database without asking again. It is
	// the bound on how long a revoked key may still verify (and mint) on
	// other instances. Zero means DefaultRootKeyCacheTTL; a negative value
	// disables the cache, so every Get queries the database and revocation
	// is immediate everywhere. The memory store ignores it (revocation is
	// immediate there).
	CacheTTL time.Duration

	// Now is the clock; nil means time.Now. Instances sharing a database
	// should have synchronised clocks: skew shifts rotation and expiry by
	// the same amount.
	Now func() time.Time

	// Logger receives security events (event=macaroon_root_key_rotated,
	// macaroon_root_key_revoked, macaroon_root_key_purged,
	// macaroon_root_key_rejected, macaroon_root_key_store_unavailable).
	// Records carry key ids, never key bytes. Nil discards them.
	Logger *slog.Logger
}

// resolve fills in defaults and checks the policy.
func (p RootKeyPolicy) resolve() (RootKeyPolicy, error) {
	if p.RotationPeriod < 0 || p.MaxTTL < 0 {
		return p, fmt.Errorf("%w: RotationPeriod and MaxTTL must not be negative", ErrInvalidRootKeyPolicy)
	}
	if p.RotationPeriod == 0 {
		p.RotationPeriod = DefaultRootKeyRotationPeriod
	}
	if p.MaxTTL == 0 {
		p.MaxTTL = DefaultRootKeyMaxTTL
	}
	// A rotation period below a second would let callers grow the key set
	// without bound; timestamps in PostgreSQL also only keep microseconds.
	if p.RotationPeriod < time.Second {
		return p, fmt.Errorf("%w: RotationPeriod %v is shorter than one second", ErrInvalidRootKeyPolicy, p.RotationPeriod)
	}
	if p.CacheTTL == 0 {
		p.CacheTTL = DefaultRootKeyCacheTTL
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// newRootKeyMaterial returns a fresh 32-byte root key and a 16-byte id, both
// from crypto/rand and independent, so the id reveals nothing about the key
// and cannot be guessed.
func newRootKeyMaterial() (key, id []byte, err error) {
	buf := make([]byte, rootKeyLen+rootKeyIDLen)
	if _, err := rand.Read(buf); err != nil {
		return nil, nil, fmt.Errorf("macaroon: generate root key: %w", err)
	}
	return buf[:rootKeyLen:rootKeyLen], buf[rootKeyLen:], nil
}

// rootKeyIDAttr renders a key id for logs. Ids are not secret (every
// macaroon carries its id) and identify which key an operator revoked.
func rootKeyIDAttr(id []byte) slog.Attr {
	return slog.String("root_key_id", hex.EncodeToString(id))
}
