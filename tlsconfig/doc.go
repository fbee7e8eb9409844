// Package tlsconfig builds TLS configurations, trust pools and HTTP clients
// that are safe without their users knowing the pitfalls.
//
// Most programs want one of three entry points:
//
//   - [Server] for a listener: TLS 1.2 and 1.3 with only forward-secret
//     AEAD suites, post-quantum hybrid key exchange first, certificates
//     from files that are reloaded when they change ([WithCertificateFiles]),
//     optional client certificates ([WithClientCAs]);
//   - [HTTPClient] for talking to a server: the same profile, the system
//     trust store plus extra CA certificates ([NewPool]), proxies from the
//     environment or [WithProxy], bounded timeouts, no https-to-http
//     redirects, and [WithRequireTLS] to refuse plain-http downloads;
//   - [Client] for a raw *tls.Config (database drivers, custom protocols).
//
// Configuration uses functional options ([Option]); one that is malformed,
// missing (a Server without a certificate) or given to a constructor it
// does not apply to is refused with [ErrInvalidOption] naming it. No option can lower
// the minimum version below TLS 1.2 or disable certificate verification;
// options can only tighten ([WithProfile] with [Modern] for TLS 1.3 only,
// [WithVerifyConnection] for extra checks that also run on resumed
// sessions).
//
// Trust pools are explicit: [NewPool] combines [SystemRoots] (which honours
// SSL_CERT_FILE and SSL_CERT_DIR), certificates compiled into the program
// ([Certificates], [PEM]) and user-supplied [PEMFile] and [PEMDir]. Every
// PEM block must be a parsable certificate or loading fails with a
// [*PEMError] naming it; leaving out SystemRoots replaces the system pool.
//
// [Describe] renders a configuration's effective settings for logs.
//
// Security events are log/slog records with a stable "event" attribute,
// sent to the logger given with [WithLogger]:
//
//   - tls_cert_reloaded: new certificate files were loaded;
//   - tls_cert_reload_failed: new files were rejected, the old pair stays;
//   - tls_insecure_request_refused (reason tls_required, host_requires_tls
//     or https_downgrade): a request or redirect was refused before any
//     connection was made.
package tlsconfig
