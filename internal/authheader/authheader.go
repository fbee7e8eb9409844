// Package authheader parses the HTTP Authorization header with one set of
// rules for every lpsec package that reads it: auth (Basic), token (Bearer)
// and macaroon (Macaroon).
//
// The rules, from RFC 9110 §11.4 and §11.6.2 (credentials = auth-scheme
// [ 1*SP token68 ]):
//
//   - A request carries at most one Authorization header: several are
//     refused (ErrMultiple), whatever their schemes, so a proxy and the
//     server cannot disagree about which one counts.
//   - The caller's size bound is checked on the raw value before anything
//     else (ErrTooLong).
//   - Leading and trailing SP and HTAB are optional whitespace around the
//     field value and are ignored. Anywhere else, any control character
//     (including HTAB), DEL or non-ASCII byte makes the header malformed.
//   - The scheme is a token (RFC 9110 tchar) compared case-insensitively.
//     A header for another scheme is ErrOtherScheme, whatever follows it
//     (other schemes may use auth-param lists).
//   - One or more SP separate the scheme from the credentials, which for
//     the three schemes lpsec reads must be one non-empty token68:
//     1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
//
// Errors never quote the header: it holds credentials.
package authheader

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrMissing: the request has no Authorization header.
	ErrMissing = errors.New("no Authorization header")
	// ErrOtherScheme: the header is for another authentication scheme.
	ErrOtherScheme = errors.New("authorization header for another scheme")
	// ErrMultiple: the request has more than one Authorization header.
	ErrMultiple = errors.New("more than one Authorization header")
	// ErrTooLong: the header is longer than the caller's bound.
	ErrTooLong = errors.New("authorization header too long")
	// ErrMalformed: the header breaks the syntax above.
	ErrMalformed = errors.New("malformed Authorization header")
	// ErrNotToken68 wraps ErrMalformed when the scheme is the caller's but
	// what follows it is missing or not one token68, so a caller can say
	// "bad credentials" rather than "bad header".
	ErrNotToken68 = fmt.Errorf("%w: credentials are not one token68", ErrMalformed)
)

// Credentials returns the token68 credentials of the single Authorization
// header in values (as http.Header.Values returns them) when its scheme is
// scheme. maxLen bounds the raw header value in bytes. Errors are, in the
// order they are checked, ErrMissing, ErrMultiple, ErrTooLong, ErrMalformed
// (wrapped, saying what is wrong), ErrOtherScheme and ErrNotToken68.
func Credentials(values []string, scheme string, maxLen int) (string, error) {
	switch {
	case len(values) == 0:
		return "", ErrMissing
	case len(values) > 1:
		return "", fmt.Errorf("%w: %d", ErrMultiple, len(values))
	}
	v := values[0]
	if len(v) > maxLen {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(v), maxLen)
	}
	v = strings.Trim(v, " \t")
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return "", fmt.Errorf("%w: control or non-ASCII byte at offset %d", ErrMalformed, i)
		}
	}
	if v == "" {
		return "", fmt.Errorf("%w: empty", ErrMalformed)
	}
	got, rest, _ := strings.Cut(v, " ")
	if !isToken(got) {
		return "", fmt.Errorf("%w: scheme is not a token", ErrMalformed)
	}
	if !strings.EqualFold(got, scheme) {
		return "", ErrOtherScheme
	}
	creds := strings.TrimLeft(rest, " ")
	if creds == "" {
		return "", fmt.Errorf("%w: nothing after the scheme", ErrNotToken68)
	}
	if !isToken68(creds) {
		return "", ErrNotToken68
	}
	return creds, nil
}

// isToken reports whether s is a non-empty RFC 9110 token (1*tchar).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isToken68 reports whether s is a non-empty RFC 9110 token68.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return false
		}
	}
	return true
}
