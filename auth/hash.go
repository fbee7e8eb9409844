package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Upper bounds on stored hash parameters. A hash above them is refused when
// loaded: a mistaken or hostile configuration must not make one login cost
// seconds of CPU or gigabytes of memory (times the number of concurrent
// checks).
const (
	maxBcryptCost     = 14     // about a second per check on current hardware
	minBcryptCostHard = 4      // bcrypt's own minimum
	maxArgon2Memory   = 262144 // KiB, 256 MiB
	maxArgon2Time     = 16
	maxArgon2Threads  = 16
	minArgon2Salt     = 8
	maxArgon2Salt     = 64
	minArgon2Key      = 16
	maxArgon2Key      = 64

	// bcrypt reads at most 72 bytes of password and ignores the rest.
	bcryptMaxPassword = 72
)

const (
	defaultArgon2Threads    = 1
	defaultArgon2KeyLen     = 32
	defaultArgon2SaltLen    = 16
	bcryptEncodedLen        = 60
	argon2Version           = 19
	bcryptAlphabet          = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	standardBase64Alphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	maxDecimalDigits        = 10
	maxUint32               = 1<<32 - 1
	hashPasswordMaxPassword = 1024
)

var bcryptEncoding = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

type algorithm uint8

const (
	algBcrypt algorithm = iota + 1
	algArgon2id
)

// credential is a parsed stored hash.
type credential struct {
	alg algorithm
	raw string // as configured; part of the success-cache key

	cost int // bcrypt

	// argon2id
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// work names the hashing work a comparison against c costs. Two
// credentials with the same work take the same time to check; the dummy
// hash for unknown users is chosen to have the work of a real one.
func (c *credential) work() string {
	switch c.alg {
	case algBcrypt:
		return "bcrypt cost=" + strconv.Itoa(c.cost)
	default:
		return fmt.Sprintf("argon2id m=%d,t=%d,p=%d salt=%d key=%d", c.memory, c.time, c.threads, len(c.salt), len(c.key))
	}
}

// matches computes the hash of password under c and compares in constant
// time. It always does the full work, also for passwords bcrypt would
// truncate, so that the outcome is the only thing that differs.
func (c *credential) matches(password string) bool {
	switch c.alg {
	case algBcrypt:
		// x/crypto/bcrypt hashes only the first 72 bytes. A longer password
		// would match the hash of its prefix; refuse it after the same work.
		ok := bcrypt.CompareHashAndPassword([]byte(c.raw), []byte(password)) == nil
		return ok && len(password) <= bcryptMaxPassword
	case algArgon2id:
		got := argon2.IDKey([]byte(password), c.salt, c.time, c.memory, c.threads, uint32(len(c.key)))
		return subtle.ConstantTimeCompare(got, c.key) == 1
	}
	return false
}

// dummy returns a credential with the same work as c that no password
// matches: random salt and random hash bytes, of which nobody knows a
// preimage. Building it costs no hashing.
func (c *credential) dummy() *credential {
	switch c.alg {
	case algBcrypt:
		salt := make([]byte, 16)
		sum := make([]byte, 23)
		rand.Read(salt)
		rand.Read(sum)
		raw := fmt.Sprintf("$2b$%02d$%s%s", c.cost, bcryptEncoding.EncodeToString(salt), bcryptEncoding.EncodeToString(sum))
		return &credential{alg: algBcrypt, raw: raw, cost: c.cost}
	default:
		d := &credential{alg: algArgon2id, memory: c.memory, time: c.time, threads: c.threads,
			salt: make([]byte, len(c.salt)), key: make([]byte, len(c.key))}
		rand.Read(d.salt)
		rand.Read(d.key)
		d.raw = encodeArgon2id(d)
		return d
	}
}

// formatError explains an unsupported hash: which format it is and how to
// replace it.
func formatError(user, format string) error {
	return fmt.Errorf("user %q: stored hash is %s, but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 %s PASSWORD` or auth.HashPassword",
		user, format, user)
}

// parseHash classifies and parses a stored hash for user.
func parseHash(user, s string) (*credential, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		c, err := parseBcrypt(s)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", user, err)
		}
		return c, nil
	case strings.HasPrefix(s, "$argon2id$"):
		c, err := parseArgon2id(s)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", user, err)
		}
		return c, nil
	}
	return nil, formatError(user, identifyFormat(s))
}

// identifyFormat names a hash format this package refuses, for the error
// message. It never returns any part of s.
func identifyFormat(s string) string {
	switch {
	case strings.HasPrefix(s, "$apr1$"):
		return "apr1-MD5 (htpasswd -m)"
	case strings.HasPrefix(s, "{SHA}"):
		return "{SHA} SHA-1 (htpasswd -s)"
	case strings.HasPrefix(s, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(s, "$5$"):
		return "SHA-256-crypt ($5$)"
	case strings.HasPrefix(s, "$6$"):
		return "SHA-512-crypt ($6$)"
	case strings.HasPrefix(s, "$2x$"), strings.HasPrefix(s, "$2$"):
		return "legacy bcrypt variant"
	case strings.HasPrefix(s, "$argon2i$"):
		return "argon2i"
	case strings.HasPrefix(s, "$argon2d$"):
		return "argon2d"
	case strings.HasPrefix(s, "$y$"), strings.HasPrefix(s, "$7$"):
		return "yescrypt/scrypt crypt"
	case len(s) == 13 && strings.Trim(s, bcryptAlphabet) == "":
		return "DES crypt (htpasswd -d)"
	case strings.HasPrefix(s, "$"):
		return "unknown $-prefixed"
	}
	return "plaintext or unknown (htpasswd -p)"
}

// parseBcrypt accepts exactly $2a$, $2b$ or $2y$, a two-digit cost and 53
// characters of bcrypt base64. x/crypto/bcrypt ignores trailing bytes, so
// the length is checked here.
func parseBcrypt(s string) (*credential, error) {
	if len(s) != bcryptEncodedLen {
		return nil, fmt.Errorf("bcrypt hash is %d bytes, want %d", len(s), bcryptEncodedLen)
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$' {
		return nil, errors.New("bcrypt cost is not two digits")
	}
	if strings.Trim(s[7:], bcryptAlphabet) != "" {
		return nil, errors.New("bcrypt salt or hash outside the bcrypt alphabet")
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < minBcryptCostHard || cost > maxBcryptCost {
		return nil, fmt.Errorf("bcrypt cost %d outside [%d, %d]", cost, minBcryptCostHard, maxBcryptCost)
	}
	return &credential{alg: algBcrypt, raw: s, cost: cost}, nil
}

// parseArgon2id parses the PHC string form
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> with unpadded
// standard base64, exactly as the argon2 reference tool writes it.
// Anything else (other versions, extra parameters, padding) is refused.
func parseArgon2id(s string) (*credential, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errors.New("argon2id hash is not $argon2id$v=19$m=,t=,p=$salt$hash")
	}
	if parts[2] != "v=19" {
		return nil, errors.New("argon2id version is not v=19")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errors.New("argon2id parameters are not m=,t=,p=")
	}
	var vals [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return nil, errors.New("argon2id parameters are not m=,t=,p=")
		}
		n, err := parseDecimal(v)
		if err != nil {
			return nil, fmt.Errorf("argon2id parameter %s is %w", strings.TrimSuffix(name, "="), err)
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	if p < 1 || p > maxArgon2Threads || t < 1 || t > maxArgon2Time || m < 8*p || m > maxArgon2Memory {
		return nil, fmt.Errorf("argon2id m=%d,t=%d,p=%d outside m in [8p, %d], t in [1, %d], p in [1, %d]",
			m, t, p, maxArgon2Memory, maxArgon2Time, maxArgon2Threads)
	}
	salt, err := decodeB64(parts[4], maxArgon2Salt)
	if err != nil || len(salt) < minArgon2Salt {
		return nil, fmt.Errorf("argon2id salt must be %d to %d bytes of unpadded base64", minArgon2Salt, maxArgon2Salt)
	}
	key, err := decodeB64(parts[5], maxArgon2Key)
	if err != nil || len(key) < minArgon2Key {
		return nil, fmt.Errorf("argon2id hash must be %d to %d bytes of unpadded base64", minArgon2Key, maxArgon2Key)
	}
	return &credential{alg: algArgon2id, raw: s, memory: m, time: t, threads: uint8(p), salt: salt, key: key}, nil
}

// parseDecimal parses a canonical unsigned decimal: no sign, no leading
// zero, at most 10 digits, at most 2^32-1.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > maxDecimalDigits || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a canonical decimal")
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a canonical decimal")
		}
		n = n*10 + uint64(s[i]-'0')
	}
	if n > maxUint32 {
		return 0, fmt.Errorf("out of range")
	}
	return uint32(n), nil
}

// decodeB64 decodes unpadded standard base64 strictly. The alphabet check
// comes first because encoding/base64 skips CR and LF even in strict mode.
func decodeB64(s string, maxBytes int) ([]byte, error) {
	if s == "" || len(s) > base64.RawStdEncoding.EncodedLen(maxBytes) || strings.Trim(s, standardBase64Alphabet) != "" {
		return nil, fmt.Errorf("not unpadded base64")
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

func encodeArgon2id(c *credential) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2Version, c.memory, c.time, c.threads,
		base64.RawStdEncoding.EncodeToString(c.salt), base64.RawStdEncoding.EncodeToString(c.key))
}

// A HashOption selects the algorithm and cost of [HashPassword]. A cost
// outside the bounds users are loaded with, or both algorithms at once,
// makes HashPassword return an error wrapping [ErrInvalidOption] naming
// the option.
type HashOption struct {
	name  string
	apply func(*hashConfig) error
}

type hashConfig struct {
	alg          algorithm
	cost         int
	memory, time uint32
	threads      uint8
	chosen       string // the option that chose the algorithm
}

func (c *hashConfig) choose(name string, alg algorithm) error {
	if c.chosen != "" && c.chosen != name {
		return fmt.Errorf("cannot be combined with %s", c.chosen)
	}
	c.chosen, c.alg = name, alg
	return nil
}

// HashBcrypt makes HashPassword write a bcrypt ($2a$, as x/crypto/bcrypt
// writes it) hash at cost (4 to 14), as `htpasswd -nbBC cost` would.
// Passwords longer than 72 bytes are refused.
func HashBcrypt(cost int) HashOption {
	return HashOption{"HashBcrypt", func(c *hashConfig) error {
		if cost < minBcryptCostHard || cost > maxBcryptCost {
			return fmt.Errorf("bcrypt cost %d outside [%d, %d]", cost, minBcryptCostHard, maxBcryptCost)
		}
		c.cost = cost
		return c.choose("HashBcrypt", algBcrypt)
	}}
}

// HashArgon2id sets the argon2id parameters of HashPassword: memory in KiB
// (8 × lanes to 262144), passes (1 to 16) and lanes (1 to 16). The default
// is OWASP's 19456 KiB, 2 passes, 1 lane.
func HashArgon2id(memoryKiB, passes uint32, lanes uint8) HashOption {
	return HashOption{"HashArgon2id", func(c *hashConfig) error {
		if lanes < 1 || lanes > maxArgon2Threads || passes < 1 || passes > maxArgon2Time ||
			memoryKiB < 8*uint32(lanes) || memoryKiB > maxArgon2Memory {
			return fmt.Errorf("argon2id m=%d,t=%d,p=%d outside m in [8p, %d], t in [1, %d], p in [1, %d]",
				memoryKiB, passes, lanes, maxArgon2Memory, maxArgon2Time, maxArgon2Threads)
		}
		c.memory, c.time, c.threads = memoryKiB, passes, lanes
		return c.choose("HashArgon2id", algArgon2id)
	}}
}

// HashPassword hashes password for a users file or spec: argon2id in PHC
// form ($argon2id$v=19$m=19456,t=2,p=1$...) by default, bcrypt with
// [HashBcrypt]. The result is checked by the same parser that loads users,
// but note that [NewBasic] by default refuses costs below bcrypt 10 or
// argon2id 19456 KiB × 2 passes.
func HashPassword(password string, opts ...HashOption) (string, error) {
	cfg := hashConfig{alg: algArgon2id, memory: DefaultMinArgon2idMemoryKiB, time: DefaultMinArgon2idPasses, threads: defaultArgon2Threads}
	for _, o := range opts {
		if o.apply == nil {
			return "", fmt.Errorf("%w: zero HashOption given to HashPassword", ErrInvalidOption)
		}
		if err := o.apply(&cfg); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if password == "" || len(password) > hashPasswordMaxPassword || !validText(password) {
		return "", fmt.Errorf("%w: empty, longer than %d bytes, not UTF-8 or holding control characters", ErrInvalidPassword, hashPasswordMaxPassword)
	}
	var encoded string
	switch cfg.alg {
	case algBcrypt:
		if len(password) > bcryptMaxPassword {
			return "", fmt.Errorf("%w: bcrypt uses only the first %d bytes of a password", ErrInvalidPassword, bcryptMaxPassword)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), cfg.cost)
		if err != nil {
			return "", fmt.Errorf("auth: bcrypt: %w", err)
		}
		encoded = string(h)
	default:
		c := &credential{alg: algArgon2id, memory: cfg.memory, time: cfg.time, threads: cfg.threads,
			salt: make([]byte, defaultArgon2SaltLen)}
		rand.Read(c.salt)
		// Fill key with a placeholder of the right size so the parameters
		// are checked by parseArgon2id before any hashing is done.
		c.key = make([]byte, defaultArgon2KeyLen)
		if _, err := parseArgon2id(encodeArgon2id(c)); err != nil {
			return "", err
		}
		c.key = argon2.IDKey([]byte(password), c.salt, c.time, c.memory, c.threads, defaultArgon2KeyLen)
		encoded = encodeArgon2id(c)
	}
	if _, err := parseHash("", encoded); err != nil {
		return "", fmt.Errorf("auth: internal error: HashPassword wrote a hash it cannot read: %w", err)
	}
	return encoded, nil
}
