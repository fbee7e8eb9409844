package patchverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Policy says which digest and key algorithms a Verifier accepts.
type Policy int

const (
	// PolicyLivepatch, the default, accepts what live-patch vendors sign
	// with and nothing weaker: SHA-512 with RSA keys of 3072 to 8192 bits.
	PolicyLivepatch Policy = iota
	// PolicyKernel accepts what a distribution kernel accepts for module
	// signatures: SHA-256, SHA-384 or SHA-512, with RSA keys of 2048, 3072
	// or 4096 bits (crypto/rsa.c's sizes, without the pre-FIPS small ones)
	// or ECDSA on P-256 or P-384.
	PolicyKernel
)

func (p Policy) String() string {
	switch p {
	case PolicyLivepatch:
		return "livepatch"
	case PolicyKernel:
		return "kernel"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

func (p Policy) allowsHash(h crypto.Hash) bool {
	switch p {
	case PolicyLivepatch:
		return h == crypto.SHA512
	case PolicyKernel:
		return h == crypto.SHA256 || h == crypto.SHA384 || h == crypto.SHA512
	}
	return false
}

func (p Policy) allowsKey(pub any) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		switch p {
		case PolicyLivepatch:
			return bits >= 3072 && bits <= 8192
		case PolicyKernel:
			return bits == 2048 || bits == 3072 || bits == 4096
		}
	case *ecdsa.PublicKey:
		return p == PolicyKernel && (k.Curve == elliptic.P256() || k.Curve == elliptic.P384())
	}
	return false
}

// A Verifier checks module signatures against pinned certificates. It is
// safe for concurrent use.
type Verifier struct {
	certs   []*x509.Certificate
	policy  Policy
	validAt time.Time
	log     *slog.Logger
}

// Signer describes a signature that verified.
type Signer struct {
	// Certificate is the pinned certificate whose key verified the module.
	Certificate *x509.Certificate
	// Signature is the parsed signature; its Content is the verified module
	// content without the signature.
	Signature *ModuleSignature
}

// NewVerifier returns a Verifier that trusts exactly certs: the signer is
// found among them by issuer and serial number or by subject key identifier,
// and certificates inside signatures are ignored. The certificates must hold
// RSA or ECDSA keys, and no two may share an issuer and serial number or a
// subject key identifier (which would make the signer ambiguous).
func NewVerifier(certs []*x509.Certificate, opts ...Option) (*Verifier, error) {
	if len(certs) == 0 {
		return nil, errors.New("patchverify: NewVerifier needs at least one certificate")
	}
	cfg, err := build("NewVerifier", forVerifier, opts)
	if err != nil {
		return nil, err
	}
	v := &Verifier{policy: cfg.policy, validAt: cfg.validAt, log: cfg.log}
	for i, c := range certs {
		if c == nil {
			return nil, fmt.Errorf("patchverify: certificate %d is nil", i)
		}
		switch c.PublicKey.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			return nil, fmt.Errorf("%w: certificate %d (%q) holds a %v key", ErrDisallowedAlgorithm, i, c.Subject.CommonName, c.PublicKeyAlgorithm)
		}
		for j, d := range certs[:i] {
			if bytes.Equal(c.RawIssuer, d.RawIssuer) && c.SerialNumber.Cmp(d.SerialNumber) == 0 {
				return nil, fmt.Errorf("patchverify: certificates %d and %d share issuer and serial number", j, i)
			}
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, d.SubjectKeyId) {
				return nil, fmt.Errorf("patchverify: certificates %d and %d share a subject key identifier", j, i)
			}
		}
	}
	v.certs = append([]*x509.Certificate(nil), certs...)
	return v, nil
}

// VerifyModule checks the appended signature of a signed module (already
// decompressed) and returns who signed it. The content that verified is
// Signer.Signature.Content; nothing else in module is covered.
func (v *Verifier) VerifyModule(module []byte) (*Signer, error) {
	s, err := v.verifyModule(module)
	if err != nil {
		v.log.Warn("module signature rejected", "event", "module_signature_rejected", "reason", reason(err), "error", err)
		return nil, err
	}
	v.log.Info("module signature verified", "event", "module_signature_verified",
		"signer", s.Certificate.Subject.CommonName, "sig_key", s.Signature.KeyID(), "sig_hashalgo", s.Signature.HashName())
	return s, nil
}

func (v *Verifier) verifyModule(module []byte) (*Signer, error) {
	sig, err := ParseModuleSignature(module)
	if err != nil {
		return nil, err
	}
	if !v.policy.allowsHash(sig.Hash) {
		return nil, fmt.Errorf("%w: digest %s under the %v policy", ErrDisallowedAlgorithm, sig.HashName(), v.policy)
	}
	if sig.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
		return nil, fmt.Errorf("%w: unsupported signature algorithm", ErrDisallowedAlgorithm)
	}
	if sig.PublicKeyAlgorithm == x509.ECDSA && sig.sigHash != sig.Hash {
		return nil, malformed("ECDSA signature algorithm names a different digest")
	}
	cert := v.find(sig)
	if cert == nil {
		return nil, fmt.Errorf("%w: sig_key %s", ErrUnknownSigner, sig.KeyID())
	}
	if !v.policy.allowsKey(cert.PublicKey) {
		return nil, fmt.Errorf("%w: %s key of certificate %q under the %v policy", ErrDisallowedAlgorithm, keyDesc(cert.PublicKey), cert.Subject.CommonName, v.policy)
	}
	if !v.validAt.IsZero() && (v.validAt.Before(cert.NotBefore) || v.validAt.After(cert.NotAfter)) {
		return nil, fmt.Errorf("%w: %q is valid from %s to %s", ErrCertificateNotValid, cert.Subject.CommonName,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	h := sig.Hash.New()
	h.Write(sig.Content)
	digest := h.Sum(nil)
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if sig.PublicKeyAlgorithm != x509.RSA || rsa.VerifyPKCS1v15(pub, sig.Hash, digest, sig.Signature) != nil {
			return nil, fmt.Errorf("%w: does not verify with %q", ErrBadSignature, cert.Subject.CommonName)
		}
	case *ecdsa.PublicKey:
		if sig.PublicKeyAlgorithm != x509.ECDSA || !ecdsa.VerifyASN1(pub, digest, sig.Signature) {
			return nil, fmt.Errorf("%w: does not verify with %q", ErrBadSignature, cert.Subject.CommonName)
		}
	default:
		return nil, ErrDisallowedAlgorithm // unreachable: NewVerifier admits only RSA and ECDSA
	}
	return &Signer{Certificate: cert, Signature: sig}, nil
}

// find matches the signer the way the kernel's pkcs7_find_key does, but only
// among pinned certificates.
func (v *Verifier) find(sig *ModuleSignature) *x509.Certificate {
	for _, c := range v.certs {
		if sig.SerialNumber != nil {
			if bytes.Equal(c.RawIssuer, sig.RawIssuer) && c.SerialNumber.Cmp(sig.SerialNumber) == 0 {
				return c
			}
		} else if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sig.SubjectKeyID) {
			return c
		}
	}
	return nil
}

func keyDesc(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// reason maps an error to the stable "reason" attribute of security events.
func reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrChecksumMismatch, "checksum_mismatch"},
		{ErrUnsigned, "unsigned"},
		{ErrMalformedSignature, "malformed_signature"},
		{ErrUnknownSigner, "unknown_signer"},
		{ErrBadSignature, "bad_signature"},
		{ErrDisallowedAlgorithm, "disallowed_algorithm"},
		{ErrCertificateNotValid, "certificate_not_valid"},
		{ErrUnsafeArchive, "unsafe_archive"},
		{ErrTooLarge, "too_large"},
		{ErrInsecureURL, "insecure_url"},
		{ErrMalformedModule, "malformed_module"},
		{ErrMetadataMismatch, "metadata_mismatch"},
		{ErrNotLivepatch, "not_livepatch"},
		{ErrWrongKernel, "wrong_kernel"},
		{ErrRollback, "rollback"},
		{ErrCorruptState, "corrupt_state"},
		{ErrMalformedCatalogue, "malformed_catalogue"},
		{ErrCatalogueExpired, "catalogue_expired"},
		{ErrCatalogueRollback, "catalogue_rollback"},
		{ErrNotInCatalogue, "not_in_catalogue"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}
