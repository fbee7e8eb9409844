package patchverify

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// scope says which functions accept an option.
type scope uint16

const (
	forVerifier   scope = 1 << iota // NewVerifier
	forPatch                        // VerifyPatch
	forChecksum                     // VerifyChecksum
	forDownload                     // Download
	forSign                         // SignModule
	forState                        // OpenFileState
	forCatalogue                    // VerifyCatalogue
	forDecompress                   // DecompressModule
)

// An Option configures NewVerifier, VerifyPatch, VerifyChecksum, Download,
// SignModule or OpenFileState. Each option's documentation says where it
// applies; giving an option to a function it does not apply to, a zero
// Option, nil where a value is needed or a limit that is not positive makes
// the function fail with an error wrapping ErrInvalidOption that names the
// option.
type Option struct {
	name  string
	scope scope
	apply func(*settings) error
}

type settings struct {
	// NewVerifier
	policy  Policy
	validAt time.Time
	log     *slog.Logger

	// VerifyPatch, VerifyChecksum, Download
	maxPatchSize     int64
	maxEntries       int
	maxFileSize      int64
	maxUnpacked      int64
	requireHTTPS     bool
	tempDir          string
	requireLivepatch bool
	kernelRelease    string
	state            AppliedState
	allowRollback    bool

	// SignModule
	hash  crypto.Hash
	keyID bool

	// OpenFileState
	maxStateSize int64

	// VerifyCatalogue, and VerifyPatch's WithCatalogue
	now                 func() time.Time
	minCatalogueVersion int64
	catalogue           *Catalogue
}

// Defaults sized for live patches, which are a few MiB: generous for real
// ones, small enough that a hostile one costs little.
const (
	// DefaultMaxPatchSize bounds the compressed tarball (WithMaxPatchSize).
	DefaultMaxPatchSize = 64 << 20
	// DefaultMaxEntries bounds the tarball's entries (WithMaxEntries).
	DefaultMaxEntries = 64
	// DefaultMaxFileSize bounds each file and the decompressed module
	// (WithMaxFileSize).
	DefaultMaxFileSize = 64 << 20
	// DefaultMaxUnpacked bounds the decompressed tar stream
	// (WithMaxUnpackedSize).
	DefaultMaxUnpacked = 128 << 20
	// DefaultMaxStateSize bounds the applied-state file (WithMaxStateSize).
	DefaultMaxStateSize = 1 << 20
	maxMetadataSize     = 64 << 10
)

// ErrInvalidOption reports an option misused: see Option.
var ErrInvalidOption = errors.New("patchverify: invalid option")

func build(fn string, sc scope, opts []Option) (*settings, error) {
	s := &settings{
		policy:       PolicyLivepatch,
		log:          slog.New(slog.DiscardHandler),
		maxPatchSize: DefaultMaxPatchSize,
		maxEntries:   DefaultMaxEntries,
		maxFileSize:  DefaultMaxFileSize,
		maxUnpacked:  DefaultMaxUnpacked,
		hash:         crypto.SHA512,
		maxStateSize: DefaultMaxStateSize,
		now:          time.Now,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero Option given to %s", ErrInvalidOption, fn)
		}
		if o.scope&sc == 0 {
			return nil, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, o.name, fn)
		}
		if err := o.apply(s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if s.allowRollback && s.state == nil {
		return nil, fmt.Errorf("%w: WithAllowRollback needs WithAppliedState", ErrInvalidOption)
	}
	return s, nil
}

func positive[T int | int64](n T) error {
	if n <= 0 {
		return fmt.Errorf("limit %d is not positive", n)
	}
	return nil
}

// WithPolicy selects the accepted algorithms; the default is
// PolicyLivepatch. Applies to NewVerifier.
func WithPolicy(p Policy) Option {
	return Option{"WithPolicy", forVerifier, func(s *settings) error {
		if p != PolicyLivepatch && p != PolicyKernel {
			return fmt.Errorf("unknown %v", p)
		}
		s.policy = p
		return nil
	}}
}

// WithValidityAt makes the Verifier refuse, with ErrCertificateNotValid, a
// signature whose pinned certificate was not valid at t. By default validity
// dates are not checked, as the kernel does not check them: modules signed
// while a vendor's certificate was valid stay loadable after it expires.
// Applies to NewVerifier.
func WithValidityAt(t time.Time) Option {
	return Option{"WithValidityAt", forVerifier, func(s *settings) error {
		if t.IsZero() {
			return errors.New("zero time")
		}
		s.validAt = t
		return nil
	}}
}

// WithLogger sends security events (attribute "event": module_signature_verified,
// module_signature_rejected, patch_checksum_mismatch, patch_archive_rejected,
// patch_verified, patch_rollback_allowed) to l. By default they are
// discarded. Applies to NewVerifier; VerifyPatch logs through its Verifier.
func WithLogger(l *slog.Logger) Option {
	return Option{"WithLogger", forVerifier, func(s *settings) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.log = l
		return nil
	}}
}

// WithMaxPatchSize bounds the bytes read or downloaded (the compressed
// tarball; default DefaultMaxPatchSize). VerifyChecksum and Download stream
// them; VerifyPatch streams them from a reader that can seek, and holds
// them in memory from any other reader and for a .tar.xz (see the package
// doc's Memory). Applies to VerifyPatch, VerifyChecksum and Download.
func WithMaxPatchSize(n int64) Option {
	return Option{"WithMaxPatchSize", forPatch | forChecksum | forDownload, func(s *settings) error {
		s.maxPatchSize = n
		return positive(n)
	}}
}

// WithMaxEntries bounds the number of tarball entries, directories included
// (default DefaultMaxEntries). Applies to VerifyPatch.
func WithMaxEntries(n int) Option {
	return Option{"WithMaxEntries", forPatch, func(s *settings) error {
		s.maxEntries = n
		return positive(n)
	}}
}

// WithMaxFileSize bounds each file in the tarball, and the module after
// decompression (default DefaultMaxFileSize). Applies to VerifyPatch and
// DecompressModule.
func WithMaxFileSize(n int64) Option {
	return Option{"WithMaxFileSize", forPatch | forDecompress, func(s *settings) error {
		s.maxFileSize = n
		return positive(n)
	}}
}

// WithMaxUnpackedSize bounds the whole decompressed tar stream, headers and
// skipped data included (default DefaultMaxUnpacked): a compression bomb
// stops there. Applies to VerifyPatch.
func WithMaxUnpackedSize(n int64) Option {
	return Option{"WithMaxUnpackedSize", forPatch, func(s *settings) error {
		s.maxUnpacked = n
		return positive(n)
	}}
}

// WithRequireHTTPS makes Download refuse, with ErrInsecureURL, a URL or
// redirect that is not https. It is the client's "TLS-only downloads"
// switch. Applies to Download.
func WithRequireHTTPS() Option {
	return Option{"WithRequireHTTPS", forDownload, func(s *settings) error {
		s.requireHTTPS = true
		return nil
	}}
}

// WithTempDir sets where Download creates its private temporary file; the
// default is os.TempDir(). Applies to Download.
func WithTempDir(dir string) Option {
	return Option{"WithTempDir", forDownload, func(s *settings) error {
		if dir == "" {
			return errors.New("empty directory")
		}
		s.tempDir = dir
		return nil
	}}
}

// WithRequireLivepatch makes VerifyPatch refuse, with ErrNotLivepatch, a
// module whose .modinfo does not say livepatch=Y: the policy for services
// that ship live patches only. Applies to VerifyPatch.
func WithRequireLivepatch() Option {
	return Option{"WithRequireLivepatch", forPatch, func(s *settings) error {
		s.requireLivepatch = true
		return nil
	}}
}

// WithKernelRelease makes VerifyPatch refuse, with ErrWrongKernel, a patch
// whose metadata and module are for another kernel release than release
// (uname -r, e.g. "6.1.0-18-amd64"). Applies to VerifyPatch.
func WithKernelRelease(release string) Option {
	return Option{"WithKernelRelease", forPatch, func(s *settings) error {
		if release == "" {
			return errors.New("empty kernel release")
		}
		s.kernelRelease = release
		return nil
	}}
}

// WithAppliedState makes VerifyPatch refuse, with ErrRollback, a patch whose
// version is not higher than the one st records as applied for the same
// kernel and module, and lets Patch.RecordApplied record it afterwards.
// Applies to VerifyPatch.
func WithAppliedState(st AppliedState) Option {
	return Option{"WithAppliedState", forPatch, func(s *settings) error {
		if st == nil {
			return errors.New("nil state")
		}
		s.state = st
		return nil
	}}
}

// WithAllowRollback is the operator's override: VerifyPatch accepts a
// version not higher than the applied one, and Patch.RecordApplied records
// it, each time logging a patch_rollback_allowed security event. It needs
// WithAppliedState. Applies to VerifyPatch.
func WithAllowRollback() Option {
	return Option{"WithAllowRollback", forPatch, func(s *settings) error {
		s.allowRollback = true
		return nil
	}}
}

// SignWithHash selects the digest: crypto.SHA512 (the default), SHA384 or
// SHA256, as sign-file's first argument does. The live-patch policy accepts
// only SHA-512. Applies to SignModule.
func SignWithHash(h crypto.Hash) Option {
	return Option{"SignWithHash", forSign, func(s *settings) error {
		if h == 0 {
			// Other unsupported digests are SignModule's ErrDisallowedAlgorithm.
			return errors.New("zero hash")
		}
		s.hash = h
		return nil
	}}
}

// SignWithKeyID names the signer by the certificate's subject key
// identifier instead of its issuer and serial number, as sign-file -k does.
// Applies to SignModule.
func SignWithKeyID() Option {
	return Option{"SignWithKeyID", forSign, func(s *settings) error {
		s.keyID = true
		return nil
	}}
}

// WithMaxStateSize bounds the applied-state file OpenFileState reads and
// writes (default DefaultMaxStateSize). Applies to OpenFileState.
func WithMaxStateSize(n int64) Option {
	return Option{"WithMaxStateSize", forState, func(s *settings) error {
		s.maxStateSize = n
		return positive(n)
	}}
}

// WithClock replaces time.Now for a catalogue's expiry; tests use it.
// Applies to VerifyCatalogue.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", forCatalogue, func(s *settings) error {
		if now == nil {
			return errors.New("nil clock")
		}
		s.now = now
		return nil
	}}
}

// WithMinCatalogueVersion makes VerifyCatalogue refuse, with
// ErrCatalogueRollback, a catalogue older than version n: give the version
// last accepted. Applies to VerifyCatalogue.
func WithMinCatalogueVersion(n int64) Option {
	return Option{"WithMinCatalogueVersion", forCatalogue, func(s *settings) error {
		s.minCatalogueVersion = n
		return positive(n)
	}}
}

// WithCatalogue makes VerifyPatch refuse, with ErrNotInCatalogue, a patch
// that c (from VerifyCatalogue) does not list with the same SHA-256, kernel
// release and version. The patch must have metadata. Applies to VerifyPatch.
func WithCatalogue(c *Catalogue) Option {
	return Option{"WithCatalogue", forPatch, func(s *settings) error {
		if c == nil {
			return errors.New("nil catalogue")
		}
		s.catalogue = c
		return nil
	}}
}
