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
	// ErrInvalidOption reports an option that is malformed, that
	// contradicts another, that is missing where a constructor needs it
	// (a Server without a certificate), or that does not apply to the
	// constructor it was given to (a client CA pool passed to Client).
	// The error names the option. NewPool's arguments are checked the same
	// way: no source, a zero PoolSource, more than 64 sources.
	ErrInvalidOption = errors.New("tlsconfig: invalid option")
	// ErrKeyPair reports a certificate and key that cannot be used
	// together: unreadable, too large, unparsable, mismatched, or outside
	// their validity period.
	ErrKeyPair = errors.New("tlsconfig: unusable certificate/key pair")
	// ErrInvalidTrustSource reports a source of trusted CA certificates
	// that cannot be loaded whole: a PEM block that does not decode, is not
	// a CERTIFICATE (a private key pasted into a CA bundle, say) or does
	// not parse (these come as a *PEMError naming the block), a source
	// with no certificate, or one beyond the size or count bounds.
	ErrInvalidTrustSource = errors.New("tlsconfig: invalid trust source")
	// ErrNotTLS reports a request refused because it is not over TLS: a
	// URL that is not https:// where TLS is required, or a redirect from
	// https to another scheme.
	ErrNotTLS = errors.New("tlsconfig: TLS required but URL is not https")
	// ErrTooManyRedirects reports a redirect chain longer than the bound.
	ErrTooManyRedirects = errors.New("tlsconfig: too many redirects")
)

// PEMError names the PEM block that made a trust source fail to load. It
// matches ErrInvalidTrustSource.
type PEMError struct {
	Source string // the file path or the name given to PEM
	Block  int    // index of the offending block in Source, from 0
	Reason string // what is wrong with it, e.g. `type "PRIVATE KEY" is not CERTIFICATE`
}

func (e *PEMError) Error() string {
	return fmt.Sprintf("%v: %s: PEM block %d: %s", ErrInvalidTrustSource, e.Source, e.Block, e.Reason)
}

func (e *PEMError) Unwrap() error { return ErrInvalidTrustSource }
