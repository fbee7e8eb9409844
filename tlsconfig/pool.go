package tlsconfig

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Bounds on trust sources. A CA bundle is a few hundred kilobytes and a few
// hundred certificates; these limits leave an order of magnitude of room
// while keeping a mistaken or hostile path (a device, a huge log file) from
// exhausting memory.
const (
	maxPEMBytes     = 8 << 20  // per file or PEM source
	maxPEMBlocks    = 4096     // per file or PEM source
	maxDirFiles     = 4096     // regular files read from one directory
	maxDirBytes     = 32 << 20 // all files of one directory together
	maxPoolSources  = 64
	maxKeyPairBytes = 1 << 20 // per certificate or key file
)

// A PoolSource is one origin of trusted CA certificates, given to NewPool.
type PoolSource struct {
	kind  string // "system", "certs", "pem", "file", "dir"
	name  string
	data  []byte
	certs []*x509.Certificate
}

// SystemRoots is the operating system's trust store as Go finds it,
// honouring SSL_CERT_FILE and SSL_CERT_DIR. Leave it out of NewPool to
// replace the system pool entirely.
func SystemRoots() PoolSource { return PoolSource{kind: "system", name: "system"} }

// Certificates trusts certificates the application already holds, such as
// CA certificates compiled into a client. name labels them in Describe.
func Certificates(name string, certs ...*x509.Certificate) PoolSource {
	return PoolSource{kind: "certs", name: name, certs: certs}
}

// PEM trusts the CERTIFICATE blocks of data (for example a go:embed file).
// name labels the source in errors and in Describe.
func PEM(name string, data []byte) PoolSource {
	return PoolSource{kind: "pem", name: name, data: data}
}

// PEMFile trusts the CERTIFICATE blocks of the file at path.
func PEMFile(path string) PoolSource { return PoolSource{kind: "file", name: path} }

// PEMDir trusts the CERTIFICATE blocks of every regular file in the
// directory at path (symbolic links followed, hidden files such as a
// Kubernetes ..data link skipped), read in name order.
func PEMDir(path string) PoolSource { return PoolSource{kind: "dir", name: path} }

// A Pool is a set of trusted CA certificates together with the record of
// where they came from, for Describe. Build one with NewPool and give it to
// WithRootCAs or WithClientCAs. A Pool is immutable and safe to share.
type Pool struct {
	pool    *x509.CertPool
	system  bool
	sources []string
	count   int // certificates added beyond the system roots
}

// NewPool builds a pool from sources. Every PEM block of every source must
// be a parsable certificate: a bad block fails the whole pool with a
// *PEMError naming it, because a silently skipped CA turns into a
// mysterious verification failure (or, worse, a silently trusted one
// elsewhere). A source that yields no certificate is an error too.
func NewPool(sources ...PoolSource) (*Pool, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("%w: NewPool needs at least one source", ErrInvalidOption)
	}
	if len(sources) > maxPoolSources {
		return nil, fmt.Errorf("%w: NewPool takes at most %d sources, got %d", ErrInvalidOption, maxPoolSources, len(sources))
	}
	p := &Pool{pool: x509.NewCertPool()}
	if slices.ContainsFunc(sources, func(s PoolSource) bool { return s.kind == "system" }) {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: loading system roots: %w", err)
		}
		p.pool, p.system = sys, true
	}
	for _, s := range sources {
		var (
			certs []*x509.Certificate
			desc  string
			err   error
		)
		switch s.kind {
		case "system":
			p.sources = append(p.sources, "system (SSL_CERT_FILE/SSL_CERT_DIR honoured)")
			continue
		case "certs":
			certs = slices.DeleteFunc(slices.Clone(s.certs), func(c *x509.Certificate) bool { return c == nil })
			if len(certs) == 0 {
				return nil, fmt.Errorf("%w: %s: no certificates", ErrInvalidTrustSource, s.name)
			}
			desc = "certificates " + s.name
		case "pem":
			certs, err = parsePEMCerts(s.name, s.data)
			desc = "pem " + s.name
		case "file":
			certs, err = readPEMFile(s.name)
			desc = "file " + s.name
		case "dir":
			var files int
			certs, files, err = readPEMDir(s.name)
			desc = fmt.Sprintf("dir %s, %d files", s.name, files)
		default:
			return nil, fmt.Errorf("%w: zero PoolSource", ErrInvalidOption)
		}
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			p.pool.AddCert(c)
		}
		p.count += len(certs)
		p.sources = append(p.sources, fmt.Sprintf("%s (%d certificates)", desc, len(certs)))
	}
	return p, nil
}

// CertPool returns the pool for use in a crypto/tls or crypto/x509 API.
// The caller must not add to it.
func (p *Pool) CertPool() *x509.CertPool { return p.pool }

// String lists the pool's sources, for logs.
func (p *Pool) String() string {
	if p == nil {
		return "<nil pool>"
	}
	return strings.Join(p.sources, "; ")
}

// parsePEMCerts decodes every PEM block of data as a certificate. Text
// outside blocks (the comments some bundles carry) is allowed; a block that
// starts but does not decode is not.
func parsePEMCerts(name string, data []byte) ([]*x509.Certificate, error) {
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalidTrustSource, name, maxPEMBytes)
	}
	var certs []*x509.Certificate
	begin := []byte("-----BEGIN")
	rest := data
	for i := 0; ; i++ {
		start := bytes.Index(rest, begin)
		if start < 0 {
			break
		}
		if i >= maxPEMBlocks {
			return nil, fmt.Errorf("%w: %s: more than %d PEM blocks", ErrInvalidTrustSource, name, maxPEMBlocks)
		}
		rest = rest[start:]
		block, after := pem.Decode(rest)
		// pem.Decode skips a malformed block and returns the next good one;
		// a second BEGIN inside what it consumed means block i was skipped.
		if block == nil || bytes.Count(rest[:len(rest)-len(after)], begin) != 1 {
			return nil, &PEMError{Source: name, Block: i, Reason: "malformed PEM"}
		}
		rest = after
		if block.Type != "CERTIFICATE" {
			return nil, &PEMError{Source: name, Block: i, Reason: fmt.Sprintf("type %q is not CERTIFICATE", boundType(block.Type))}
		}
		if len(block.Headers) != 0 {
			return nil, &PEMError{Source: name, Block: i, Reason: "certificate block has headers"}
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &PEMError{Source: name, Block: i, Reason: "certificate does not parse: " + err.Error()}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s: no certificates", ErrInvalidTrustSource, name)
	}
	return certs, nil
}

// errTooLarge is readBounded's refusal; callers turn it into their own
// sentinel (ErrInvalidTrustSource, ErrKeyPair) with the bound.
var errTooLarge = errors.New("file too large")

// readBounded reads at most limit bytes of path, failing with errTooLarge
// beyond that.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

func readPEMFile(path string) ([]*x509.Certificate, error) {
	certs, _, err := readPEMFileLimit(path, maxPEMBytes)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalidTrustSource, path, maxPEMBytes)
	}
	return certs, err
}

// readPEMFileLimit reads and parses at most limit bytes of path, and also
// returns how many bytes it read. Beyond limit it returns errTooLarge.
func readPEMFileLimit(path string, limit int64) ([]*x509.Certificate, int64, error) {
	data, err := readBounded(path, limit)
	if errors.Is(err, errTooLarge) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("tlsconfig: reading trust file: %w", err)
	}
	certs, err := parsePEMCerts(path, data)
	return certs, int64(len(data)), err
}

func readPEMDir(dir string) ([]*x509.Certificate, int, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, 0, fmt.Errorf("tlsconfig: reading trust directory: %w", err)
	}
	var (
		certs []*x509.Certificate
		files int
		// Each file is bounded, but thousands of large files are not a
		// trust directory: bound the directory as a whole too.
		left int64 = maxDirBytes
	)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows symlinks, as mounted secrets use them
		if err != nil {
			return nil, 0, fmt.Errorf("tlsconfig: reading trust directory: %w", err)
		}
		if info.Mode()&fs.ModeType != 0 {
			continue
		}
		if files++; files > maxDirFiles {
			return nil, 0, fmt.Errorf("%w: %s: more than %d files", ErrInvalidTrustSource, dir, maxDirFiles)
		}
		cs, n, err := readPEMFileLimit(path, min(left, maxPEMBytes))
		if err != nil {
			if errors.Is(err, errTooLarge) {
				if left < maxPEMBytes {
					return nil, 0, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalidTrustSource, dir, maxDirBytes)
				}
				return nil, 0, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalidTrustSource, path, maxPEMBytes)
			}
			return nil, 0, err
		}
		left -= n
		certs = append(certs, cs...)
	}
	if len(certs) == 0 {
		return nil, 0, fmt.Errorf("%w: %s: no certificates", ErrInvalidTrustSource, dir)
	}
	return certs, files, nil
}

// boundType cuts a PEM block type for an error message: it comes from the
// file, which may be anything.
func boundType(t string) string {
	const max = 40
	if len(t) > max {
		return t[:max] + "..."
	}
	return t
}
