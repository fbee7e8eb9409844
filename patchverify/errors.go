package patchverify

import "errors"

// Errors returned by this package, wrapped with context. Test for them with
// errors.Is; the messages name what was wrong, never key material.
var (
	// ErrChecksumMismatch: the patch's SHA-256 is not the expected one, or
	// the expected value is not 64 hexadecimal characters.
	ErrChecksumMismatch = errors.New("patchverify: checksum mismatch")
	// ErrUnsigned: the module has no appended signature (no magic string).
	ErrUnsigned = errors.New("patchverify: module is not signed")
	// ErrMalformedSignature: the trailer or the PKCS#7 message breaks the
	// rules the kernel's mod_check_sig and PKCS#7 parser enforce, or is not
	// strict DER.
	ErrMalformedSignature = errors.New("patchverify: malformed module signature")
	// ErrUnknownSigner: no pinned certificate matches the signer's issuer and
	// serial number or subject key identifier.
	ErrUnknownSigner = errors.New("patchverify: signer is not a pinned certificate")
	// ErrBadSignature: the signature does not verify with the pinned
	// certificate's key over the module's content.
	ErrBadSignature = errors.New("patchverify: bad module signature")
	// ErrDisallowedAlgorithm: the digest, key type or key size is not allowed
	// by the verifier's policy.
	ErrDisallowedAlgorithm = errors.New("patchverify: algorithm not allowed by policy")
	// ErrCertificateNotValid: WithValidityAt was given and the matched
	// certificate was not valid at that time.
	ErrCertificateNotValid = errors.New("patchverify: signing certificate not valid at the checked time")
	// ErrUnsafeArchive: the tarball holds something a patch must not: links,
	// devices, unsafe or duplicate names, no module or several modules.
	ErrUnsafeArchive = errors.New("patchverify: unsafe patch archive")
	// ErrTooLarge: a size or count limit was reached (download, entries,
	// decompressed bytes, module size).
	ErrTooLarge = errors.New("patchverify: size limit exceeded")
	// ErrInsecureURL: Download was asked for HTTPS only and the URL, or a
	// redirect, is not https.
	ErrInsecureURL = errors.New("patchverify: refusing a download not over https")
	// ErrMalformedModule: the signed module is not an ELF file whose
	// .modinfo section can be read within bounds.
	ErrMalformedModule = errors.New("patchverify: malformed kernel module")
	// ErrMetadataMismatch: metadata.json disagrees with what the signed
	// module says (kernel release in vermagic, name, version), or is missing
	// where a check needs it.
	ErrMetadataMismatch = errors.New("patchverify: patch metadata disagrees with the signed module")
	// ErrNotLivepatch: WithRequireLivepatch was given and the module does not
	// say livepatch=Y.
	ErrNotLivepatch = errors.New("patchverify: module is not a live patch")
	// ErrWrongKernel: the patch is for another kernel release than the one
	// given with WithKernelRelease.
	ErrWrongKernel = errors.New("patchverify: patch is for another kernel")
	// ErrRollback: the patch's version is not higher than the version the
	// applied state records for the same kernel and module.
	ErrRollback = errors.New("patchverify: patch version is not newer than the applied one")
	// ErrCorruptState: the applied-state file cannot be trusted (unreadable,
	// truncated, checksum mismatch, too large). It is never silently reset.
	ErrCorruptState = errors.New("patchverify: applied-state file is corrupt")
	// ErrMalformedCatalogue: a signed catalogue's content is not a catalogue
	// or breaks its rules (strict JSON, positive versions, expiry, sizes).
	ErrMalformedCatalogue = errors.New("patchverify: malformed patch catalogue")
	// ErrCatalogueExpired: the catalogue's expiry has passed: the server or
	// mirror may be replaying an old one (a freeze).
	ErrCatalogueExpired = errors.New("patchverify: patch catalogue expired")
	// ErrCatalogueRollback: the catalogue is older than one already seen.
	ErrCatalogueRollback = errors.New("patchverify: patch catalogue older than one already seen")
	// ErrNotInCatalogue: the patch is not listed in the catalogue, or listed
	// for another kernel or version.
	ErrNotInCatalogue = errors.New("patchverify: patch not listed in the catalogue")
)
