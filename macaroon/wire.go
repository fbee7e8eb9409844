package macaroon

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/internal/authheader"
)

// Bounds on what a request may carry. They are far above what lpsec mints
// (a login macaroon is about 200 bytes, a discharged resource macaroon about
// 600) and far below what would let a client make the server work hard.
const (
	// MaxEncodedBytes bounds one encoded slice: one Macaroons header value,
	// one macaroon-* cookie or one Authorization value.
	MaxEncodedBytes = 16 << 10
	// MaxSlices bounds how many slices (headers plus cookies) one request
	// may present.
	MaxSlices = 4
	// MaxMacaroonsPerSlice bounds a primary macaroon plus its discharges.
	MaxMacaroonsPerSlice = 8
	// MaxCaveats bounds the caveats of any one macaroon.
	MaxCaveats = 32
	// maxIDBytes bounds a macaroon or caveat id.
	maxIDBytes = 1024
)

// Slice is a primary macaroon followed by its bound discharges, as
// presented in one request. It is gopkg.in/macaroon.v2's Slice, aliased so
// that callers need not import a second package named macaroon.
type Slice = macaroon.Slice

// Header names of the httpbakery wire format.
const (
	headerMacaroons = "Macaroons"
	cookiePrefix    = "macaroon-"
	authScheme      = "Macaroon"
	// maxAuthorization bounds the Authorization header: the scheme, spaces
	// and one encoded slice.
	maxAuthorization = MaxEncodedBytes + 64
)

// RequestMacaroons returns the macaroon slices a request carries, in the
// three forms lpsec accepts: httpbakery's Macaroons header, httpbakery's
// macaroon-* cookies, and "Authorization: Macaroon <base64>" (read with the
// header rules every lpsec package shares: one Authorization header, at most
// MaxEncodedBytes of credentials, scheme in any case, one or more spaces,
// no control bytes; a header for another scheme is ignored). Each value is
// base64 (standard or URL alphabet, padded or not) of a JSON array of
// macaroons, as httpbakery writes it, or of binary V2 macaroons
// concatenated. A request without any returns (nil, nil); a value that
// breaks a bound or cannot be decoded returns an error matching
// ErrMalformed.
func RequestMacaroons(r *http.Request) ([]Slice, error) {
	var values []string
	cred, err := authheader.Credentials(r.Header.Values("Authorization"), authScheme, maxAuthorization)
	switch {
	case err == nil:
		values = append(values, cred)
	case errors.Is(err, authheader.ErrMissing), errors.Is(err, authheader.ErrOtherScheme):
		// No macaroon there; another scheme belongs to another handler.
	default:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	values = append(values, r.Header.Values(headerMacaroons)...)
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			values = append(values, c.Value)
		}
	}
	if len(values) > MaxSlices {
		return nil, fmt.Errorf("%w: %d macaroon values in request, at most %d", ErrMalformed, len(values), MaxSlices)
	}
	var mss []macaroon.Slice
	for _, v := range values {
		ms, err := DecodeSlice(v)
		if err != nil {
			return nil, err
		}
		mss = append(mss, ms)
	}
	return mss, nil
}

// DecodeSlice decodes one encoded slice (see RequestMacaroons) and checks
// it against the bounds. Errors match ErrMalformed.
func DecodeSlice(s string) (Slice, error) {
	if len(s) > MaxEncodedBytes {
		return nil, fmt.Errorf("%w: encoded macaroons longer than %d bytes", ErrMalformed, MaxEncodedBytes)
	}
	data, err := macaroon.Base64Decode([]byte(strings.TrimSpace(s)))
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrMalformed)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	var ms macaroon.Slice
	switch data[0] {
	case '[':
		err = json.Unmarshal(data, &ms)
	case '{':
		ms, err = decodeObject(data)
	default:
		err = ms.UnmarshalBinary(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decode macaroons", ErrMalformed)
	}
	if err := checkSlice(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// EncodeSlice encodes a primary macaroon and its discharges as httpbakery
// does (base64url of the JSON array), for a Macaroons header, a
// macaroon-* cookie or an "Authorization: Macaroon" value.
func EncodeSlice(ms Slice) (string, error) {
	if err := checkSlice(ms); err != nil {
		return "", err
	}
	data, err := json.Marshal(ms)
	if err != nil {
		return "", fmt.Errorf("macaroon: encoding slice: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(data), nil
}

// ParseMacaroon parses a macaroon in the bakery's JSON form (as written by
// json.Marshal of a *bakery.Macaroon or by WriteMacaroon), which keeps the
// encrypted payloads of version 3 third-party caveats that the binary form
// loses. Errors match ErrMalformed.
func ParseMacaroon(data []byte) (m *bakery.Macaroon, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: input made a dependency panic", ErrMalformed)
		}
	}()
	if len(data) > MaxEncodedBytes {
		return nil, fmt.Errorf("%w: macaroon JSON longer than %d bytes", ErrMalformed, MaxEncodedBytes)
	}
	// bakery.Macaroon.UnmarshalJSON dereferences nil on the JSON literal
	// null (its old-format fallback passes a nil *macaroon.Macaroon to
	// NewLegacyMacaroon): only an object may reach it.
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: macaroon JSON must be an object", ErrMalformed)
	}
	return parseMacaroon(data)
}

func parseMacaroon(data []byte) (*bakery.Macaroon, error) {
	var m bakery.Macaroon
	if err := json.Unmarshal(data, &m); err != nil || m.M() == nil {
		return nil, fmt.Errorf("%w: cannot decode bakery macaroon JSON", ErrMalformed)
	}
	if err := checkSlice(macaroon.Slice{m.M()}); err != nil {
		return nil, err
	}
	return &m, nil
}

// WriteMacaroon writes m as the JSON body of an HTTP response, in the
// bakery's JSON form (see ParseMacaroon). The macaroon is a bearer
// credential: the response must only go over TLS.
func WriteMacaroon(w http.ResponseWriter, status int, m *bakery.Macaroon) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("macaroon: encoding macaroon: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(data, '\n'))
	return err
}

// checkSlice enforces the count bounds on a decoded slice.
func checkSlice(ms Slice) error {
	if len(ms) == 0 {
		return fmt.Errorf("%w: no macaroons in slice", ErrMalformed)
	}
	if len(ms) > MaxMacaroonsPerSlice {
		return fmt.Errorf("%w: %d macaroons in slice, at most %d", ErrMalformed, len(ms), MaxMacaroonsPerSlice)
	}
	for _, m := range ms {
		if m == nil {
			return fmt.Errorf("%w: null macaroon", ErrMalformed)
		}
		if len(m.Id()) == 0 || len(m.Id()) > maxIDBytes {
			return fmt.Errorf("%w: macaroon id length %d out of range", ErrMalformed, len(m.Id()))
		}
		cavs := m.Caveats()
		if len(cavs) > MaxCaveats {
			return fmt.Errorf("%w: %d caveats, at most %d", ErrMalformed, len(cavs), MaxCaveats)
		}
		for _, c := range cavs {
			if len(c.Id) == 0 || len(c.Id) > maxIDBytes {
				return fmt.Errorf("%w: caveat length %d out of range", ErrMalformed, len(c.Id))
			}
			// The binary format refuses this; the JSON format lets anyone
			// set it, because a first-party caveat's location is not signed.
			if len(c.VerificationId) == 0 && c.Location != "" {
				return fmt.Errorf("%w: location on a first-party caveat", ErrMalformed)
			}
		}
	}
	return nil
}
