package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Profile selects the protocol versions a configuration accepts.
type Profile int

const (
	// Intermediate accepts TLS 1.2 and 1.3, following Mozilla's
	// "intermediate" server-side TLS guidelines (version 6.0): for TLS 1.2
	// only the six ECDHE suites with AEAD ciphers. It is the default.
	Intermediate Profile = iota
	// Modern accepts TLS 1.3 only.
	Modern
)

func (p Profile) String() string {
	switch p {
	case Intermediate:
		return "intermediate"
	case Modern:
		return "modern"
	}
	return fmt.Sprintf("Profile(%d)", int(p))
}

// scope says which constructors accept an option.
type scope uint8

const (
	forServer scope = 1 << iota
	forClient       // Client
	forHTTP         // HTTPClient

	forClients = forClient | forHTTP
	forAll     = forServer | forClients
)

// An Option configures Server, Client or HTTPClient. Each option's
// documentation says where it applies; giving an option to a constructor it
// does not apply to is an error (ErrInvalidOption), not silently ignored.
type Option struct {
	name  string
	scope scope
	apply func(*settings) error
}

type settings struct {
	profile        Profile
	logger         *slog.Logger
	now            func() time.Time
	roots          *Pool
	clientCAs      *Pool
	certs          []tls.Certificate
	certFile       string
	keyFile        string
	reloadInterval time.Duration
	verify         func(tls.ConnectionState) error
	serverName     string

	proxySet         bool
	httpProxy        string
	httpsProxy       string
	noProxy          string
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	headerTimeout    time.Duration
	idleTimeout      time.Duration
	requireTLS       bool
	tlsHosts         []string
}

// Defaults. The dial timeout matches what live-patch clients document; the
// others bound how long a stalled peer can hold a connection.
const (
	DefaultDialTimeout           = 12 * time.Second
	DefaultHandshakeTimeout      = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleTimeout           = 90 * time.Second
	DefaultReloadInterval        = time.Second
)

func build(ctor string, sc scope, opts []Option) (*settings, error) {
	s := &settings{
		logger:           slog.New(slog.DiscardHandler),
		now:              time.Now,
		reloadInterval:   DefaultReloadInterval,
		dialTimeout:      DefaultDialTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		headerTimeout:    DefaultResponseHeaderTimeout,
		idleTimeout:      DefaultIdleTimeout,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero Option given to %s", ErrInvalidOption, ctor)
		}
		if o.scope&sc == 0 {
			return nil, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, o.name, ctor)
		}
		if err := o.apply(s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	return s, nil
}

func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("duration %v is not positive", d)
	}
	return nil
}

// WithProfile selects the profile (default Intermediate). Applies to all
// constructors. There is deliberately no way to accept anything older than
// TLS 1.2.
func WithProfile(p Profile) Option {
	return Option{"WithProfile", forAll, func(s *settings) error {
		if p != Intermediate && p != Modern {
			return fmt.Errorf("unknown profile %d", int(p))
		}
		s.profile = p
		return nil
	}}
}

// WithLogger receives the package's security events (certificate reloads,
// refused insecure requests). Applies to all constructors. By default events
// are discarded.
func WithLogger(l *slog.Logger) Option {
	return Option{"WithLogger", forAll, func(s *settings) error {
		if l == nil {
			return fmt.Errorf("nil logger")
		}
		s.logger = l
		return nil
	}}
}

// WithClock replaces time.Now for certificate validity checks and the
// reload rate limit; tests use it. Applies to all constructors.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", forAll, func(s *settings) error {
		if now == nil {
			return fmt.Errorf("nil clock")
		}
		s.now = now
		return nil
	}}
}

// WithRootCAs verifies servers (and HTTPS proxies) against p instead of the
// system pool. Applies to Client and HTTPClient.
func WithRootCAs(p *Pool) Option {
	return Option{"WithRootCAs", forClients, func(s *settings) error {
		if p == nil {
			return fmt.Errorf("nil pool")
		}
		s.roots = p
		return nil
	}}
}

// WithClientCAs makes a server require a client certificate that chains to
// p (mutual TLS). Applies to Server.
func WithClientCAs(p *Pool) Option {
	return Option{"WithClientCAs", forServer, func(s *settings) error {
		if p == nil {
			return fmt.Errorf("nil pool")
		}
		s.clientCAs = p
		return nil
	}}
}

// WithCertificate presents cert: the server certificate for Server, the
// client certificate for Client and HTTPClient. It may be repeated on a
// server (crypto/tls picks by SNI and key type).
func WithCertificate(cert tls.Certificate) Option {
	return Option{"WithCertificate", forAll, func(s *settings) error {
		if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
			return fmt.Errorf("certificate without chain or key")
		}
		s.certs = append(s.certs, cert)
		return nil
	}}
}

// WithCertificateFiles presents the PEM certificate chain and key in
// certFile and keyFile, and picks up new files without a restart: at most
// once per reload interval, a handshake checks whether either file changed
// (identity, size, modification time, then content), so an in-place write,
// a rename, and the rename-over-symlink swap of mounted Kubernetes secrets
// are all seen. A new pair is used only once it parses, its key matches
// and it is within its validity period; otherwise the old pair stays and a
// tls_cert_reload_failed event is logged. Applies to all constructors.
func WithCertificateFiles(certFile, keyFile string) Option {
	return Option{"WithCertificateFiles", forAll, func(s *settings) error {
		if certFile == "" || keyFile == "" {
			return fmt.Errorf("empty file name")
		}
		s.certFile, s.keyFile = certFile, keyFile
		return nil
	}}
}

// WithReloadInterval sets how often WithCertificateFiles checks the files
// (default 1s). Applies to all constructors.
func WithReloadInterval(d time.Duration) Option {
	return Option{"WithReloadInterval", forAll, func(s *settings) error {
		s.reloadInterval = d
		return positive(d)
	}}
}

// WithVerifyConnection adds a check run after crypto/tls's own certificate
// verification on every handshake, including resumed ones (it is installed
// as tls.Config.VerifyConnection, which, unlike VerifyPeerCertificate, also
// runs on resumption). It can only add restrictions. Applies to all
// constructors.
func WithVerifyConnection(f func(tls.ConnectionState) error) Option {
	return Option{"WithVerifyConnection", forAll, func(s *settings) error {
		if f == nil {
			return fmt.Errorf("nil function")
		}
		s.verify = f
		return nil
	}}
}

// WithServerName sets the name a client verifies the server certificate
// against, when it differs from the dialled host. Applies to Client only:
// HTTPClient takes the name from each request's URL.
func WithServerName(name string) Option {
	return Option{"WithServerName", forClient, func(s *settings) error {
		if name == "" {
			return fmt.Errorf("empty server name")
		}
		s.serverName = name
		return nil
	}}
}

// WithProxy sets the proxies explicitly instead of reading HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY (and their lower-case forms) from the
// environment. httpProxy serves http:// requests, httpsProxy serves
// https:// requests (tunnelled with CONNECT); each may be an http:// or
// https:// proxy URL, and an https proxy's certificate is verified against
// the same roots as the destination. Empty strings mean no proxy. noProxy
// is a comma-separated list in the NO_PROXY syntax. Requests to localhost
// and loopback addresses never go through a proxy. Applies to HTTPClient.
func WithProxy(httpProxy, httpsProxy, noProxy string) Option {
	return Option{"WithProxy", forHTTP, func(s *settings) error {
		for _, p := range []string{httpProxy, httpsProxy} {
			if p == "" {
				continue
			}
			u, err := url.Parse(p)
			if err != nil {
				return fmt.Errorf("proxy URL does not parse")
			}
			if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("proxy URL must be http://host[:port] or https://host[:port]")
			}
		}
		s.proxySet = true
		s.httpProxy, s.httpsProxy, s.noProxy = httpProxy, httpsProxy, noProxy
		return nil
	}}
}

// WithDialTimeout bounds establishing a TCP connection (default 12s).
// Applies to HTTPClient.
func WithDialTimeout(d time.Duration) Option {
	return Option{"WithDialTimeout", forHTTP, func(s *settings) error {
		s.dialTimeout = d
		return positive(d)
	}}
}

// WithHandshakeTimeout bounds the TLS handshake (default 10s). Applies to
// HTTPClient.
func WithHandshakeTimeout(d time.Duration) Option {
	return Option{"WithHandshakeTimeout", forHTTP, func(s *settings) error {
		s.handshakeTimeout = d
		return positive(d)
	}}
}

// WithResponseHeaderTimeout bounds the wait for response headers after the
// request is written (default 30s). It does not bound reading the body, so
// long downloads are governed by the request's context. Applies to
// HTTPClient.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return Option{"WithResponseHeaderTimeout", forHTTP, func(s *settings) error {
		s.headerTimeout = d
		return positive(d)
	}}
}

// WithIdleTimeout closes kept-alive connections idle this long (default
// 90s). Applies to HTTPClient.
func WithIdleTimeout(d time.Duration) Option {
	return Option{"WithIdleTimeout", forHTTP, func(s *settings) error {
		s.idleTimeout = d
		return positive(d)
	}}
}

// WithRequireTLS makes the client refuse every request, redirects
// included, whose URL is not https://, before any connection is made. Use
// it for patch downloads. Applies to HTTPClient.
func WithRequireTLS() Option {
	return Option{"WithRequireTLS", forHTTP, func(s *settings) error {
		s.requireTLS = true
		return nil
	}}
}

// WithTLSRequiredFor makes the client refuse plain-http requests to the
// given hosts while allowing them elsewhere: links such as the entitlement
// service or SSO that must always be TLS. A host is matched exactly
// (case-insensitively, without port); "*.example.com" matches every
// subdomain of example.com. Applies to HTTPClient.
func WithTLSRequiredFor(hosts ...string) Option {
	return Option{"WithTLSRequiredFor", forHTTP, func(s *settings) error {
		for _, orig := range hosts {
			h := strings.TrimSuffix(strings.ToLower(orig), ".")
			base := strings.TrimPrefix(h, "*.")
			if base == "" || strings.ContainsAny(base, "*:/ ") {
				return fmt.Errorf("host pattern %q is not a host name or *.domain", orig)
			}
			s.tlsHosts = append(s.tlsHosts, h)
		}
		return nil
	}}
}
