package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lpsec/lpsec/internal/authheader"
)

const (
	// maxAuthorization bounds the Authorization header lpsec decodes. A
	// 256-byte user and a 1024-byte password fit with room to spare.
	maxAuthorization = 4096
	// maxPassword bounds a password given to Verify.
	maxPassword = 1024
	// maxForwardedFor bounds the X-Forwarded-For bytes and hops examined.
	maxForwardedFor     = 4096
	maxForwardedForHops = 32
)

var (
	// errNoCredentials: no Authorization header, or one for another scheme.
	// The answer is the challenge, and nothing is logged.
	errNoCredentials = errors.New("auth: no Basic credentials")

	errMalformedHeader = errors.New("auth: malformed Authorization header")
	errMultipleHeaders = fmt.Errorf("%w: more than one", errMalformedHeader)
	errHeaderTooLarge  = fmt.Errorf("%w: larger than %d bytes", errMalformedHeader, maxAuthorization)
	errNotBase64       = fmt.Errorf("%w: credentials are not strict base64", errMalformedHeader)
	errNoColon         = fmt.Errorf("%w: no colon between user-id and password", errMalformedHeader)
	errEmptyUser       = fmt.Errorf("%w: empty user-id", errMalformedHeader)
	errBadText         = fmt.Errorf("%w: user-id or password not UTF-8 or holds control characters", errMalformedHeader)
	errTooLong         = fmt.Errorf("%w: user-id or password too long", errMalformedHeader)
)

// parseAuthorization parses the Authorization header values of a request
// per RFC 7617, with the header rules every lpsec package shares
// (internal/authheader, RFC 9110: one header, bounded, scheme
// case-insensitive, 1*SP, no control bytes), token68 strictly base64-decoded, user-id non-empty, both parts UTF-8
// without control characters, the password may contain colons.
func parseAuthorization(values []string) (user, password string, err error) {
	token, err := authheader.Credentials(values, "Basic", maxAuthorization)
	switch {
	case errors.Is(err, authheader.ErrMissing), errors.Is(err, authheader.ErrOtherScheme):
		return "", "", errNoCredentials
	case errors.Is(err, authheader.ErrMultiple):
		return "", "", errMultipleHeaders
	case errors.Is(err, authheader.ErrTooLong):
		return "", "", errHeaderTooLarge
	case errors.Is(err, authheader.ErrNotToken68):
		return "", "", errNotBase64
	case err != nil:
		return "", "", fmt.Errorf("%w: %v", errMalformedHeader, err)
	}
	// base64's decoder skips CR and LF even in strict mode: check the
	// alphabet first (the header rules already refused control bytes; this
	// also refuses the URL-safe alphabet token68 allows).
	if strings.Trim(strings.TrimRight(token, "="), standardBase64Alphabet) != "" {
		return "", "", errNotBase64
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil {
		return "", "", errNotBase64
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errNoColon
	}
	if err := checkCredentials(user, password); err != nil {
		return "", "", err
	}
	return user, password, nil
}

// checkCredentials applies the header's rules to credentials given to
// Verify directly.
func checkCredentials(user, password string) error {
	switch {
	case user == "":
		return errEmptyUser
	case len(user) > maxUserName || len(password) > maxPassword:
		return errTooLong
	case !validText(user) || !validText(password):
		return errBadText
	}
	return nil
}

// clientAddr is the address throttling is keyed on: RemoteAddr, or, when
// RemoteAddr is a trusted proxy, the right-most X-Forwarded-For hop that is
// not itself a trusted proxy. It returns the zero Addr if RemoteAddr does
// not parse (a Unix socket, say).
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	remote := parseHost(r.RemoteAddr)
	if !remote.IsValid() || !isTrusted(remote, trusted) {
		return remote
	}
	values := r.Header.Values("X-Forwarded-For")
	joined := strings.Join(values, ",")
	if len(joined) > maxForwardedFor {
		return remote
	}
	hops := strings.Split(joined, ",")
	client := remote
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedForHops; i, n = i-1, n+1 {
		a := parseHost(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			// A hop we cannot read: the last trusted hop is the best
			// we know.
			return client
		}
		client = a
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return client
}

func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey groups addresses for throttling: one IPv4 address, or one IPv6
// /64, the smallest block a single client usually gets.
func addrKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
