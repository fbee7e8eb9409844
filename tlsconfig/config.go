package tlsconfig

import (
	"crypto/tls"
	"fmt"
)

// intermediateSuites are the TLS 1.2 suites of Mozilla's intermediate
// profile: ECDHE key exchange (forward secrecy) with AEAD ciphers. Go's own
// default list still carries four ECDHE CBC-SHA suites; those are dropped.
// TLS 1.3 suites are not configurable in crypto/tls and are all AEAD.
var intermediateSuites = [...]uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// groups are the key exchanges offered and accepted: the hybrid
// post-quantum X25519MLKEM768 first, then the three classical groups of the
// Mozilla profiles. P-521 is left out, as Mozilla does: slow and no more
// useful than P-384.
var groups = [...]tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// clientSessionCacheSize bounds the sessions a Client remembers for
// resumption; one per server it talks to is the common case.
const clientSessionCacheSize = 64

// crypto/tls would silently prefer one source over the other depending on
// SNI, so the two are not combined.
var errExclusiveCerts = fmt.Errorf("%w: WithCertificate and WithCertificateFiles cannot be combined", ErrInvalidOption)

func base(s *settings) *tls.Config {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		MaxVersion:       tls.VersionTLS13,
		CipherSuites:     intermediateSuites[:],
		CurvePreferences: groups[:],
		Time:             s.now,
	}
	if s.profile == Modern {
		cfg.MinVersion = tls.VersionTLS13
		cfg.CipherSuites = nil // ignored by TLS 1.3
	}
	if s.verify != nil {
		cfg.VerifyConnection = s.verify
	}
	return cfg
}

// Server returns a TLS configuration for a server: the Intermediate profile
// unless WithProfile says otherwise, a certificate from WithCertificate or
// WithCertificateFiles (one is required), session tickets on (crypto/tls
// rotates their keys), and client-certificate authentication when
// WithClientCAs is given.
func Server(opts ...Option) (*tls.Config, error) {
	s, err := build("Server", forServer, opts)
	if err != nil {
		return nil, err
	}
	cfg := base(s)
	cfg.Certificates = s.certs
	if s.certFile != "" {
		if len(s.certs) > 0 {
			return nil, errExclusiveCerts
		}
		kp, err := loadKeyPairFiles(s)
		if err != nil {
			return nil, err
		}
		cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(h.Context()), nil }
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, fmt.Errorf("%w: Server needs WithCertificate or WithCertificateFiles", ErrInvalidOption)
	}
	if s.clientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = s.clientCAs.pool
	}
	return cfg, nil
}

// Client returns a TLS configuration for a client: the Intermediate profile
// unless WithProfile says otherwise, servers verified against the system
// pool or WithRootCAs, a session cache so reconnections resume, and a
// client certificate when WithCertificate or WithCertificateFiles is given.
// For HTTP, HTTPClient wraps it with proxies, timeouts and TLS enforcement.
func Client(opts ...Option) (*tls.Config, error) {
	s, err := build("Client", forClient, opts)
	if err != nil {
		return nil, err
	}
	return client(s)
}

func client(s *settings) (*tls.Config, error) {
	cfg := base(s)
	cfg.ServerName = s.serverName
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(clientSessionCacheSize)
	if s.roots != nil {
		cfg.RootCAs = s.roots.pool
	}
	cfg.Certificates = s.certs
	if s.certFile != "" {
		if len(s.certs) > 0 {
			return nil, errExclusiveCerts
		}
		kp, err := loadKeyPairFiles(s)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(r *tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(r.Context()), nil }
	}
	return cfg, nil
}
