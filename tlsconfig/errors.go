package tlsconfig

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them,
// so callers branch with errors.Is, except failures to read a trust file or
// directory or the system roots, which wrap the operating system's error
// instead (errors.Is(err, fs.ErrNotExist) and the like): those are the
// operator's configuration, not a property of the input.
var (
	// ErrInvalidOption reports an option that is malformed or that does
	// not apply to the constructor it was given to (for example a client
	// CA pool passed to Client).
	ErrInvalidOption = errors.New("tlsconfig: invalid option")
	// ErrNoCertificate reports a server configuration without a certificate.
	ErrNoCertificate = errors.New("tlsconfig: no certificate configured")
	// ErrKeyPair reports a certificate and key that cannot be used
	// together: unreadable, unparsable, mismatched, or outside their
	// validity period.
	ErrKeyPair = errors.New("tlsconfig: unusable certificate/key pair")
	// ErrBadPEM reports PEM text that does not decode.
	ErrBadPEM = errors.New("tlsconfig: malformed PEM block")
	// ErrNotCertificate reports a PEM block of a type other than
	// CERTIFICATE in a trust source (a private key in a CA bundle, say).
	ErrNotCertificate = errors.New("tlsconfig: PEM block is not a certificate")
	// ErrBadCertificate reports a CERTIFICATE block whose DER does not parse.
	ErrBadCertificate = errors.New("tlsconfig: certificate does not parse")
	// ErrNoCertificates reports a trust source that holds no certificate.
	ErrNoCertificates = errors.New("tlsconfig: no certificates in trust source")
	// ErrTooLarge reports an input beyond this package's size or count bounds.
	ErrTooLarge = errors.New("tlsconfig: input too large")
	// ErrNotTLS reports a URL that is not https:// where TLS is required.
	ErrNotTLS = errors.New("tlsconfig: TLS required but URL is not https")
	// ErrInsecureRedirect reports a redirect from https to another scheme.
	ErrInsecureRedirect = errors.New("tlsconfig: redirect from https to plain http refused")
	// ErrTooManyRedirects reports a redirect chain longer than the bound.
	ErrTooManyRedirects = errors.New("tlsconfig: too many redirects")
)

// PEMError names the PEM block that made a trust source fail to load.
type PEMError struct {
	Source string // the file path or the name given to PEM
	Block  int    // index of the offending block in Source, from 0
	Err    error  // one of ErrBadPEM, ErrNotCertificate, ErrBadCertificate, with detail
}

func (e *PEMError) Error() string {
	return fmt.Sprintf("%s: PEM block %d: %v", e.Source, e.Block, e.Err)
}

func (e *PEMError) Unwrap() error { return e.Err }
