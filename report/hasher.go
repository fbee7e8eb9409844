package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
)

// Errors about keys and hashed machine IDs.
var (
	// ErrInvalidKey means NewKey was given an unusable key ID or secret (a
	// bad key ID, a secret shorter than MinKeySize or all zero), or
	// NewHasher a current key not made by NewKey.
	ErrInvalidKey = errors.New("report: invalid key")

	// ErrInvalidHashedID means a string is not a hashed machine ID in the
	// form "<key ID>:<64 lowercase hexadecimal characters>".
	ErrInvalidHashedID = errors.New("report: invalid hashed machine ID")

	// ErrUnknownKey means a hashed machine ID names a key the Hasher does
	// not hold: it was made under a retired key or a foreign deployment.
	ErrUnknownKey = errors.New("report: hashed machine ID made under an unknown key")

	// ErrMismatch means a hashed machine ID names a known key but is not
	// the hash of the given machine ID.
	ErrMismatch = errors.New("report: hashed machine ID does not match")

	// ErrNotOwnMachine means a report's hashed machine ID is not that of
	// the machine whose credential sent it (VerifyOwner): a machine
	// reporting for another. It also matches ErrMismatch. Servers answer
	// it with 403 and store nothing.
	ErrNotOwnMachine = errors.New("report: hashed machine ID belongs to another machine")
)

// MinKeySize is the smallest secret NewKey accepts: 32 bytes, the output
// size of SHA-256, so the key is never the weak point of the HMAC.
const MinKeySize = 32

const maxKeyIDLen = 32

// hashContext separates machine-ID hashes from any other use of the same
// secret. It and the 16 ID bytes fit in one SHA-256 block.
const hashContext = "lpsec report machine-id v1\x00"

// Key is a named HMAC-SHA256 key for hashing machine IDs. The name (key ID)
// travels with every hash made under it, so a server can rotate keys and
// still recognise hashes made under the previous ones.
//
// A Key never prints, formats or logs its secret: String, Format, GoString
// and LogValue show only the key ID.
type Key struct {
	id string
	// The secret sits behind a pointer because fmt cannot call Format on
	// a Key held in an unexported field: it prints such fields by
	// reflection, and prints a nested pointer as an address, not its bytes.
	s *keySecret
}

type keySecret struct{ b []byte }

// NewKey returns a key named id holding a copy of secret. The id is 1 to 32
// characters from [A-Za-z0-9._-] (it must not be secret: it appears in
// every hashed ID); the secret is at least MinKeySize random bytes.
func NewKey(id string, secret []byte) (Key, error) {
	if err := checkKeyID(id); err != nil {
		return Key{}, err
	}
	if len(secret) < MinKeySize {
		return Key{}, fmt.Errorf("%w: key %q: secret has %d bytes, want at least %d", ErrInvalidKey, id, len(secret), MinKeySize)
	}
	if subtle.ConstantTimeCompare(secret, make([]byte, len(secret))) == 1 {
		return Key{}, fmt.Errorf("%w: key %q: secret is all zero", ErrInvalidKey, id)
	}
	return Key{id: id, s: &keySecret{append([]byte(nil), secret...)}}, nil
}

func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("%w: key ID must have 1 to %d characters, has %d", ErrInvalidKey, maxKeyIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if !keyIDChar(id[i]) {
			return fmt.Errorf("%w: key ID has a character outside [A-Za-z0-9._-] at offset %d", ErrInvalidKey, i)
		}
	}
	return nil
}

func keyIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// valid reports whether k was made by NewKey (the zero Key was not).
func (k Key) valid() bool { return k.id != "" && k.s != nil && len(k.s.b) >= MinKeySize }

// ID returns the key ID.
func (k Key) ID() string { return k.id }

// String returns a redacted description naming only the key ID.
func (k Key) String() string { return "report.Key{ID:" + k.id + ", secret:REDACTED}" }

// GoString is String: %#v must not reveal the secret either.
func (k Key) GoString() string { return k.String() }

// Format prints String for every verb, so %x, %v, %+v and %#v never reveal
// the secret.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs the key ID only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("secret", "REDACTED"))
}

// HashedID is a machine ID hashed under a named key: a pseudonym that the
// server can store and compare, but that reveals nothing about the machine
// ID to anyone without the key. It is made only by Hasher.Hash or parsed by
// ParseHashedID, so a raw machine ID (16 bytes) cannot pose as one (32).
//
// Its text form, used in JSON, is "<key ID>:<64 lowercase hex>". The zero
// HashedID means "no machine ID".
type HashedID struct {
	key string
	sum [sha256.Size]byte
}

// ParseHashedID parses the text form of a hashed machine ID. Only the
// canonical form (lowercase hex) is accepted, so two hashed IDs are equal
// exactly when their strings are.
func ParseHashedID(s string) (HashedID, error) {
	const hexLen = 2 * sha256.Size
	if len(s) > maxKeyIDLen+1+hexLen {
		return HashedID{}, fmt.Errorf("%w: %d characters, want at most %d", ErrInvalidHashedID, len(s), maxKeyIDLen+1+hexLen)
	}
	if len(s) < hexLen+2 || s[len(s)-hexLen-1] != ':' {
		return HashedID{}, fmt.Errorf("%w: want <key ID>:<%d hexadecimal characters>", ErrInvalidHashedID, hexLen)
	}
	keyID, h := s[:len(s)-hexLen-1], s[len(s)-hexLen:]
	if err := checkKeyID(keyID); err != nil {
		return HashedID{}, fmt.Errorf("%w: bad key ID", ErrInvalidHashedID)
	}
	var id HashedID
	for i := range id.sum {
		hi, lo := h[2*i], h[2*i+1]
		if !lowerHex(hi) || !lowerHex(lo) {
			return HashedID{}, fmt.Errorf("%w: not lowercase hexadecimal", ErrInvalidHashedID)
		}
		a, _ := unhex(hi)
		b, _ := unhex(lo)
		id.sum[i] = a<<4 | b
	}
	id.key = keyID
	return id, nil
}

func lowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// KeyID returns the ID of the key the hash was made under.
func (id HashedID) KeyID() string { return id.key }

// IsZero reports whether id is the zero HashedID.
func (id HashedID) IsZero() bool { return id.key == "" }

// String returns the text form, or "" for the zero HashedID.
func (id HashedID) String() string {
	if id.IsZero() {
		return ""
	}
	b, _ := id.MarshalText()
	return string(b)
}

// MarshalText returns the text form. The zero HashedID has none.
func (id HashedID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return nil, fmt.Errorf("%w: zero value", ErrInvalidHashedID)
	}
	b := make([]byte, 0, len(id.key)+1+2*len(id.sum))
	b = append(b, id.key...)
	b = append(b, ':')
	return hex.AppendEncode(b, id.sum[:]), nil
}

// UnmarshalText parses the text form strictly, as ParseHashedID does.
func (id *HashedID) UnmarshalText(b []byte) error {
	v, err := ParseHashedID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Hasher hashes machine IDs under a current key and recognises hashes made
// under the current and previous keys. It is safe for concurrent use.
type Hasher struct {
	keys []*hasherKey // keys[0] is the current key
}

type hasherKey struct {
	id   string
	pool sync.Pool // of *hashState
}

type hashState struct {
	mac hash.Hash
	msg [len(hashContext) + 16]byte
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher that hashes under current and, given
// [WithPreviousKeys], also recognises hashes made under previous keys.
// Rotate by making the old current key a previous key; drop a previous
// key once no stored hash names it. A current key not made by NewKey is
// refused with ErrInvalidKey; a key ID given twice with ErrInvalidOption.
func NewHasher(current Key, opts ...Option) (*Hasher, error) {
	if !current.valid() {
		return nil, fmt.Errorf("%w: the current key is not made by NewKey", ErrInvalidKey)
	}
	cfg, err := build("NewHasher", forHasher, opts)
	if err != nil {
		return nil, err
	}
	all := append([]Key{current}, cfg.previous...)
	h := &Hasher{keys: make([]*hasherKey, 0, len(all))}
	for _, k := range all {
		for _, seen := range h.keys {
			if seen.id == k.id {
				return nil, fmt.Errorf("%w: WithPreviousKeys: key ID %q given twice", ErrInvalidOption, k.id)
			}
		}
		secret := k.s.b
		hk := &hasherKey{id: k.id}
		// Pooled HMAC states: after Reset, crypto/hmac restores the keyed
		// state instead of rehashing the key, which keeps Hash allocation-
		// free and well under a microsecond.
		hk.pool.New = func() any {
			s := &hashState{mac: hmac.New(sha256.New, secret)}
			copy(s.msg[:], hashContext)
			return s
		}
		h.keys = append(h.keys, hk)
	}
	return h, nil
}

func (k *hasherKey) hash(machineID *[16]byte) [sha256.Size]byte {
	s := k.pool.Get().(*hashState)
	s.mac.Reset()
	copy(s.msg[len(hashContext):], machineID[:])
	s.mac.Write(s.msg[:])
	sum := [sha256.Size]byte(s.mac.Sum(s.sum[:0]))
	clear(s.msg[len(hashContext):])
	k.pool.Put(s)
	return sum
}

// Hash returns machineID hashed under the current key:
// HMAC-SHA256(key, "lpsec report machine-id v1\x00" || machineID).
func (h *Hasher) Hash(machineID [16]byte) HashedID {
	k := h.keys[0]
	return HashedID{key: k.id, sum: k.hash(&machineID)}
}

func (h *Hasher) key(id string) (*hasherKey, bool) {
	for _, k := range h.keys {
		if k.id == id {
			return k, true
		}
	}
	return nil, false
}

// Recognize reports whether id was made under the current key (current is
// true) or a previous key (false, nil error: the machine should re-hash
// under the current key). It returns an error wrapping ErrUnknownKey when
// id names none of h's keys, and ErrInvalidHashedID for the zero HashedID.
// It cannot tell whether id is a genuine hash; Verify can, given the
// machine ID.
func (h *Hasher) Recognize(id HashedID) (current bool, err error) {
	if id.IsZero() {
		return false, fmt.Errorf("%w: zero value", ErrInvalidHashedID)
	}
	if _, ok := h.key(id.key); !ok {
		return false, fmt.Errorf("%w: key ID %q", ErrUnknownKey, id.key)
	}
	return id.key == h.keys[0].id, nil
}

// Verify reports, in constant time, whether id is machineID hashed under the
// key id names, which may be the current or a previous key. It returns nil,
// or an error wrapping ErrUnknownKey, ErrMismatch or ErrInvalidHashedID.
func (h *Hasher) Verify(machineID [16]byte, id HashedID) error {
	if id.IsZero() {
		return fmt.Errorf("%w: zero value", ErrInvalidHashedID)
	}
	k, ok := h.key(id.key)
	if !ok {
		return fmt.Errorf("%w: key ID %q", ErrUnknownKey, id.key)
	}
	sum := k.hash(&machineID)
	if !hmac.Equal(sum[:], id.sum[:]) {
		return fmt.Errorf("%w under key %q", ErrMismatch, id.key)
	}
	return nil
}

// VerifyOwner checks that id, a report's machine ID, belongs to the machine
// that sent it: that it is registered (the app-specific ID the machine
// registered under, which its credential names) hashed under one of h's
// keys. Clients that want their reports accepted by such a server hash
// their app-specific ID (see the package documentation), not the raw
// machine ID. It returns nil, or an error wrapping ErrNotOwnMachine (and
// ErrMismatch), ErrUnknownKey or ErrInvalidHashedID. It compares in
// constant time and needs no stored state, so it holds across key
// rotation: a hash under a previous key is checked under that key.
func (h *Hasher) VerifyOwner(registered [16]byte, id HashedID) error {
	err := h.Verify(registered, id)
	if errors.Is(err, ErrMismatch) {
		return fmt.Errorf("%w: %w", ErrNotOwnMachine, err)
	}
	return err
}
