package patchverify

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A Catalogue is the publisher's signed list of the patches it offers now,
// in the manner of TUF's timestamp role: a version that only increases and
// an expiry. A client that requires one (WithCatalogue) installs only a
// patch the catalogue lists with the same SHA-256, kernel and version.
//
// Threat model. A server or mirror that the publisher does not control, or
// an attacker between them and the client, can change what they serve but
// cannot sign. Against them the catalogue stops:
//   - freeze: serving yesterday's list forever; the client refuses a
//     catalogue past its expiry (ErrCatalogueExpired), so the publisher must
//     re-sign at least once per expiry period;
//   - rollback of the list: serving an older catalogue than one the client
//     has seen (ErrCatalogueRollback), given that the client remembers the
//     version it last accepted;
//   - withholding or substitution: offering a validly signed patch the
//     publisher has withdrawn or never listed for this kernel
//     (ErrNotInCatalogue).
//
// It does not stop: a compromised signing key (use a separate key, kept
// offline, for catalogues if that matters); a client whose remembered
// version is deleted or whose clock is wrong (it accepts any unexpired
// catalogue, however old); denial of service (a server can always refuse
// to answer; the client then installs nothing, which the expiry turns into
// a visible error rather than a silent freeze); and a freeze shorter than
// the expiry period. The signature is the kernel module format (detached
// PKCS#7 appended to the content) over a content that starts with
// "lpsec patch catalogue 1\n", which no kernel module starts with, so a
// signed catalogue can never pass for a module, nor a module for a
// catalogue.
type Catalogue struct {
	// Version increases with every catalogue the publisher signs.
	Version int64 `json:"version"`
	// Expires is when the catalogue stops being accepted.
	Expires time.Time `json:"expires"`
	// Patches lists what the publisher offers.
	Patches []CatalogueEntry `json:"patches"`
}

// CatalogueEntry lists one patch.
type CatalogueEntry struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`  // lower-case hex
	Kernel   string `json:"kernel"`  // release: Metadata.Release(), the module's vermagic
	Version  int    `json:"version"` // Metadata.Version
}

const (
	catalogueMagic = "lpsec patch catalogue 1\n"
	// MaxCatalogueSize bounds a signed catalogue: ample for thousands of
	// patches.
	MaxCatalogueSize     = 4 << 20
	maxCatalogueEntries  = 1 << 16
	maxCatalogueFieldLen = 256
)

// Lookup returns the entry listing the patch with checksum sha256hex.
func (c *Catalogue) Lookup(sha256hex string) (CatalogueEntry, bool) {
	for _, e := range c.Patches {
		if strings.EqualFold(e.SHA256, sha256hex) {
			return e, true
		}
	}
	return CatalogueEntry{}, false
}

// SignCatalogue returns c signed with key, the private key of cert, in the
// form VerifyCatalogue reads. It refuses a catalogue VerifyCatalogue would
// refuse as malformed. SignWithHash and SignWithKeyID apply as to
// SignModule.
func SignCatalogue(c Catalogue, key crypto.Signer, cert *x509.Certificate, opts ...Option) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	content := append([]byte(catalogueMagic), body...)
	if len(content) > MaxCatalogueSize-maxSigLen-trailerLen {
		return nil, fmt.Errorf("%w: catalogue of %d bytes", ErrTooLarge, len(content))
	}
	return SignModule(content, key, cert, opts...)
}

// VerifyCatalogue checks a signed catalogue against v's pinned certificates
// and policy, parses it strictly, and refuses it when it has expired
// (ErrCatalogueExpired; the clock is WithClock's) or is older than
// WithMinCatalogueVersion (ErrCatalogueRollback). A client should remember
// the Version it accepted and give it as the minimum next time.
func VerifyCatalogue(signed []byte, v *Verifier, opts ...Option) (*Catalogue, error) {
	if v == nil {
		return nil, errors.New("patchverify: VerifyCatalogue needs a Verifier")
	}
	cfg, err := build("VerifyCatalogue", forCatalogue, opts)
	if err != nil {
		return nil, err
	}
	c, err := verifyCatalogue(signed, v, cfg)
	if err != nil {
		v.log.Warn("patch catalogue rejected", "event", "patch_catalogue_rejected", "reason", reason(err), "error", err)
		return nil, err
	}
	v.log.Info("patch catalogue verified", "event", "patch_catalogue_verified", "version", c.Version, "expires", c.Expires, "patches", len(c.Patches))
	return c, nil
}

func verifyCatalogue(signed []byte, v *Verifier, cfg *settings) (*Catalogue, error) {
	if len(signed) > MaxCatalogueSize {
		return nil, fmt.Errorf("%w: catalogue larger than %d bytes", ErrTooLarge, MaxCatalogueSize)
	}
	s, err := v.verifyModule(signed)
	if err != nil {
		return nil, err
	}
	c, err := parseCatalogue(s.Signature.Content)
	if err != nil {
		return nil, err
	}
	if now := cfg.now(); !now.Before(c.Expires) {
		return nil, fmt.Errorf("%w: version %d expired at %s", ErrCatalogueExpired, c.Version, c.Expires.UTC().Format(time.RFC3339))
	}
	if c.Version < cfg.minCatalogueVersion {
		return nil, fmt.Errorf("%w: version %d, version %d was seen", ErrCatalogueRollback, c.Version, cfg.minCatalogueVersion)
	}
	return c, nil
}

// parseCatalogue reads the signed content: the magic line, then exactly one
// JSON object with no unknown fields.
func parseCatalogue(content []byte) (*Catalogue, error) {
	body, ok := bytes.CutPrefix(content, []byte(catalogueMagic))
	if !ok {
		return nil, fmt.Errorf("%w: not a patch catalogue", ErrMalformedCatalogue)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c Catalogue
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCatalogue, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the catalogue", ErrMalformedCatalogue)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Catalogue) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedCatalogue, fmt.Sprintf(format, a...))
	}
	if c.Version < 1 {
		return bad("version %d is not positive", c.Version)
	}
	if c.Expires.IsZero() {
		return bad("no expiry")
	}
	if len(c.Patches) > maxCatalogueEntries {
		return bad("more than %d patches", maxCatalogueEntries)
	}
	seen := make(map[string]bool, len(c.Patches))
	for i, e := range c.Patches {
		for _, f := range []string{e.Filename, e.Kernel} {
			if f == "" || len(f) > maxCatalogueFieldLen || strings.ContainsFunc(f, unsafeRune) {
				return bad("patch %d: empty, long or unprintable filename or kernel", i)
			}
		}
		if len(e.SHA256) != 64 || strings.ToLower(e.SHA256) != e.SHA256 {
			return bad("patch %d: sha256 is not 64 lower-case hex digits", i)
		}
		if _, err := hex.DecodeString(e.SHA256); err != nil {
			return bad("patch %d: sha256 is not 64 lower-case hex digits", i)
		}
		if e.Version < 1 {
			return bad("patch %d: version %d is not positive", i, e.Version)
		}
		if seen[e.SHA256] {
			return bad("patch %s listed twice", e.SHA256)
		}
		seen[e.SHA256] = true
	}
	return nil
}

// checkListed refuses a verified patch that c does not list with the same
// checksum, kernel and version.
func (c *Catalogue) checkListed(p *Patch) error {
	e, ok := c.Lookup(p.SHA256)
	if !ok {
		return fmt.Errorf("%w: %s is not in catalogue version %d", ErrNotInCatalogue, p.SHA256, c.Version)
	}
	if p.Metadata == nil || p.Info == nil || e.Kernel != p.Info.Release() || e.Version != p.Metadata.Version {
		return fmt.Errorf("%w: catalogue version %d lists %s for kernel %q version %d, the patch says otherwise", ErrNotInCatalogue, c.Version, p.SHA256, e.Kernel, e.Version)
	}
	return nil
}
