package macaroon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"gopkg.in/macaroon.v2"
)

// httpbakery's discharge-required protocol (go-macaroon-bakery v3.0.2
// httpbakery/error.go and client.go; Python macaroonbakery.httpbakery):
//
//   - The client says which protocol it speaks in the Bakery-Protocol-Version
//     request header. Missing, unparsable or negative means version 0; a
//     version above the latest known (3) means 3.
//   - A server that needs a macaroon answers with the error JSON
//     {"Code":"macaroon discharge required","Message":…,"Info":{"Macaroon":…,
//     "MacaroonPath":…,"CookieNameSuffix":…}} and Content-Type exactly
//     "application/json": with status 407 to version 0 clients, and with
//     status 401 and "WWW-Authenticate: Macaroon" (exactly that value: both
//     clients compare the whole header) to versions 1 to 3.
//   - The client discharges Info.Macaroon's third-party caveats, stores the
//     bound slice as the cookie "macaroon-"+CookieNameSuffix for the path
//     MacaroonPath (resolved against the request URL) and retries.

// BakeryProtocolHeader is the request header in which httpbakery clients
// name the bakery protocol version they speak.
const BakeryProtocolHeader = "Bakery-Protocol-Version"

// DischargeRequiredCode is the Code of httpbakery's discharge-required error.
const DischargeRequiredCode = "macaroon discharge required"

// DefaultCookieNameSuffix is the cookie name suffix httpbakery uses when a
// discharge-required answer names none: the client stores the macaroons in
// the cookie "macaroon-auth".
const DefaultCookieNameSuffix = "auth"

// MaxDischargeRequiredBytes bounds the body of a discharge-required answer
// that ParseDischargeRequired reads. A resource macaroon in the bakery's
// JSON form is about 1 KiB; anything longer is refused, whatever the
// Content-Length says.
const MaxDischargeRequiredBytes = 32 << 10

const (
	maxMacaroonPathBytes = 1024
	maxCookieSuffixBytes = 128
	maxMessageBytes      = 256
)

// Errors of ParseDischargeRequired and DischargeClient.DischargeRequired.
var (
	// ErrNotDischargeRequired means an HTTP answer is not httpbakery's
	// discharge-required error (another status, another
	// WWW-Authenticate challenge, another Content-Type or error code).
	ErrNotDischargeRequired = errors.New("macaroon: not a discharge-required answer")
	// ErrProtocolVersion means the answer uses a bakery protocol version
	// lpsec does not speak: the version 0 form (status 407), or a macaroon
	// of a version other than 3.
	ErrProtocolVersion = errors.New("macaroon: unsupported bakery protocol version")
)

// RequestVersion returns the bakery protocol version r asks for, exactly as
// httpbakery.RequestVersion decides it: 0 when the Bakery-Protocol-Version
// header is missing, not a decimal integer or negative; 3 (the latest) when
// it is higher.
func RequestVersion(r *http.Request) bakery.Version {
	vs := r.Header.Get(BakeryProtocolHeader)
	if vs == "" {
		return bakery.Version0
	}
	x, err := strconv.Atoi(vs)
	if err != nil || x < 0 {
		return bakery.Version0
	}
	if x > int(bakery.LatestVersion) {
		return bakery.LatestVersion
	}
	return bakery.Version(x)
}

// DischargeRequired is httpbakery's discharge-required answer: a macaroon
// whose third-party caveats the client must get discharged, and where the
// client is to keep the discharged result.
type DischargeRequired struct {
	// Macaroon is the macaroon to discharge (bakery JSON form on the wire).
	Macaroon *bakery.Macaroon
	// MacaroonPath is the URL path, relative to the request's URL or
	// absolute, for which the client stores the cookie. Empty in
	// WriteDischargeRequired means what httpbakery uses: the path from
	// the request's URL to "/" (the whole site).
	MacaroonPath string
	// CookieNameSuffix names the cookie "macaroon-"+CookieNameSuffix.
	// Empty in WriteDischargeRequired means DefaultCookieNameSuffix.
	CookieNameSuffix string
	// Message is the human-readable message. Empty in
	// WriteDischargeRequired means DischargeRequiredCode, as httpbakery
	// writes it. ParseDischargeRequired truncates it to 256 bytes.
	Message string
}

// bakeryError is httpbakery.Error as it is marshaled: same field names, same
// order, same omitempty rules, so the bytes are those httpbakery writes.
type bakeryError struct {
	Code    string           `json:",omitempty"`
	Message string           `json:",omitempty"`
	Info    *bakeryErrorInfo `json:",omitempty"`
}

type bakeryErrorInfo struct {
	Macaroon         *bakery.Macaroon `json:",omitempty"`
	MacaroonPath     string           `json:",omitempty"`
	CookieNameSuffix string           `json:",omitempty"`
}

// WriteDischargeRequired writes httpbakery's discharge-required answer to r
// for dr: status 407 to a client of protocol version 0 (see
// RequestVersion), else status 401 with "WWW-Authenticate: Macaroon"; the
// body is the httpbakery error JSON with Content-Type "application/json",
// byte for byte what httpbakery.WriteError writes for
// httpbakery.NewDischargeRequiredError. Cache-Control: no-store is added.
// The macaroon is useless without its discharges, but it is still a
// credential in the making: answer only over TLS.
func WriteDischargeRequired(w http.ResponseWriter, r *http.Request, dr DischargeRequired) error {
	if dr.Macaroon == nil || dr.Macaroon.M() == nil {
		return fmt.Errorf("macaroon: WriteDischargeRequired needs a macaroon")
	}
	if dr.Message == "" {
		dr.Message = DischargeRequiredCode
	}
	if dr.MacaroonPath == "" {
		dr.MacaroonPath = "/"
		if r != nil && r.URL != nil {
			if p, ok := relativeURLPath(r.URL.Path, "/"); ok {
				dr.MacaroonPath = p
			}
		}
	}
	if dr.CookieNameSuffix == "" {
		dr.CookieNameSuffix = DefaultCookieNameSuffix
	}
	data, err := json.Marshal(bakeryError{
		Code:    DischargeRequiredCode,
		Message: dr.Message,
		Info:    &bakeryErrorInfo{Macaroon: dr.Macaroon, MacaroonPath: dr.MacaroonPath, CookieNameSuffix: dr.CookieNameSuffix},
	})
	if err != nil {
		return fmt.Errorf("macaroon: encoding discharge-required answer: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	status := http.StatusProxyAuthRequired
	if r != nil && RequestVersion(r) >= bakery.Version1 {
		status = http.StatusUnauthorized
		h.Set("WWW-Authenticate", authScheme)
	}
	w.WriteHeader(status)
	_, err = w.Write(data)
	return err
}

// relativeURLPath is httpbakery's internal/httputil.RelativeURLPath: the
// relative path that leads from basePath to targPath.
func relativeURLPath(basePath, targPath string) (string, bool) {
	if !strings.HasPrefix(basePath, "/") || !strings.HasPrefix(targPath, "/") {
		return "", false
	}
	baseParts := strings.Split(basePath, "/")
	targParts := strings.Split(targPath, "/")
	lastElem := targParts[len(targParts)-1]
	baseParts = baseParts[:len(baseParts)-1]
	targParts = targParts[:len(targParts)-1]
	i := 0
	for ; i < len(baseParts); i++ {
		if i >= len(targParts) || baseParts[i] != targParts[i] {
			break
		}
	}
	result := make([]string, 0, len(baseParts)-i+len(targParts)-i+1)
	for j := i; j < len(baseParts); j++ {
		result = append(result, "..")
	}
	result = append(result, targParts[i:]...)
	result = append(result, lastElem)
	final := strings.Join(result, "/")
	if final == "" {
		final = "."
	}
	return final, true
}

// ParseDischargeRequired reads an HTTP answer as httpbakery's
// discharge-required error, as a bakery client does, but refuses what a
// hostile server could use against the client. It reads at most
// MaxDischargeRequiredBytes of the body and does not close it. It returns
// an error matching:
//   - ErrNotDischargeRequired: not a 401 with exactly "WWW-Authenticate:
//     Macaroon" (nor a 407), not JSON, or another error code;
//   - ErrProtocolVersion: a 407 (the version 0 form, to a client that asked
//     for version 3) or a macaroon of a version other than 3;
//   - ErrMalformed: a body over the bound, bad JSON, no macaroon, a
//     macaroon that ParseMacaroon refuses, a MacaroonPath that is not a
//     clean path (a scheme, host, query or fragment, or over 1 KiB), or a
//     CookieNameSuffix that is not a short cookie-name token.
//
// It does not check the third-party locations of the macaroon against an
// allow-list (it has none): DischargeClient.DischargeRequired does, before
// any request.
func ParseDischargeRequired(resp *http.Response) (*DischargeRequired, error) {
	if resp == nil {
		return nil, fmt.Errorf("%w: no response", ErrNotDischargeRequired)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if ch := resp.Header.Values("WWW-Authenticate"); len(ch) != 1 || ch[0] != authScheme {
			return nil, fmt.Errorf("%w: 401 without the challenge \"WWW-Authenticate: Macaroon\"", ErrNotDischargeRequired)
		}
	case http.StatusProxyAuthRequired:
		return nil, fmt.Errorf("%w: status 407 is the version 0 form; lpsec speaks version 3", ErrProtocolVersion)
	default:
		return nil, fmt.Errorf("%w: status %d", ErrNotDischargeRequired, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: Content-Type is not application/json", ErrNotDischargeRequired)
	}
	if resp.Body == nil {
		return nil, fmt.Errorf("%w: empty discharge-required answer", ErrMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDischargeRequiredBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the discharge-required answer: %v", ErrMalformed, err)
	}
	return parseDischargeRequiredBody(body)
}

func parseDischargeRequiredBody(body []byte) (*DischargeRequired, error) {
	if len(body) > MaxDischargeRequiredBytes {
		return nil, fmt.Errorf("%w: discharge-required answer longer than %d bytes", ErrMalformed, MaxDischargeRequiredBytes)
	}
	// Field names match case-insensitively, as httpbakery's Go client
	// decodes them (Python also accepts lower-case code and message).
	var e struct {
		Code    string
		Message string
		Info    *struct {
			Macaroon         json.RawMessage
			MacaroonPath     string
			CookieNameSuffix string
		}
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("%w: discharge-required answer is not a JSON error object", ErrMalformed)
	}
	if e.Code != DischargeRequiredCode {
		return nil, fmt.Errorf("%w: error code %q", ErrNotDischargeRequired, truncate(e.Code, 64))
	}
	if e.Info == nil || len(e.Info.Macaroon) == 0 {
		return nil, fmt.Errorf("%w: discharge-required answer without a macaroon", ErrMalformed)
	}
	m, err := ParseMacaroon(e.Info.Macaroon)
	if err != nil {
		return nil, err
	}
	if m.Version() != bakery.Version3 {
		return nil, fmt.Errorf("%w: macaroon of version %d", ErrProtocolVersion, m.Version())
	}
	if err := checkMacaroonPath(e.Info.MacaroonPath); err != nil {
		return nil, err
	}
	if err := checkCookieSuffix(e.Info.CookieNameSuffix); err != nil {
		return nil, err
	}
	return &DischargeRequired{
		Macaroon:         m,
		MacaroonPath:     e.Info.MacaroonPath,
		CookieNameSuffix: e.Info.CookieNameSuffix,
		Message:          truncate(e.Message, maxMessageBytes),
	}, nil
}

// checkMacaroonPath applies httpbakery's parseURLPath rule (a path only:
// no scheme, host, user, query or fragment) and a length bound.
func checkMacaroonPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > maxMacaroonPathBytes {
		return fmt.Errorf("%w: MacaroonPath longer than %d bytes", ErrMalformed, maxMacaroonPathBytes)
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasPrefix(p, "//") {
		return fmt.Errorf("%w: MacaroonPath is not a clean URL path", ErrMalformed)
	}
	return nil
}

// checkCookieSuffix accepts RFC 7230 token characters only, so the cookie
// name the client builds is valid and cannot inject attributes.
func checkCookieSuffix(s string) error {
	if len(s) > maxCookieSuffixBytes {
		return fmt.Errorf("%w: CookieNameSuffix longer than %d bytes", ErrMalformed, maxCookieSuffixBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("%w: CookieNameSuffix is not a cookie-name token", ErrMalformed)
		}
	}
	return nil
}

// decodeObject decodes one JSON macaroon object, in gopkg.in/macaroon.v2's
// form or in the bakery's ({"m":…,"v":…}, what WriteMacaroon writes and
// login responses carry), so that the bakery form sent back base64-encoded
// is accepted as it is.
func decodeObject(data []byte) (Slice, error) {
	var probe struct {
		M json.RawMessage `json:"m"`
	}
	if json.Unmarshal(data, &probe) == nil && len(probe.M) > 0 {
		bm, err := ParseMacaroon(data)
		if err != nil {
			return nil, err
		}
		return Slice{bm.M()}, nil
	}
	var m macaroon.Macaroon
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return Slice{&m}, nil
}
