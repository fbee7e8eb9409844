package tlsconfig

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Bounds on what a server can make an HTTPClient do.
const (
	maxRedirects      = 10
	maxResponseHeader = 1 << 20
)

// HTTPClient returns an HTTP client whose TLS configuration is Client's,
// with proxies (read from the environment when HTTPClient is called,
// unless WithProxy is given; an HTTPS proxy is verified against the same
// roots), dial, handshake,
// response-header and idle timeouts, no redirect from https to http, and
// the refusals of WithRequireTLS and WithTLSRequiredFor applied before any
// connection is made. It accepts the options of Client (except
// WithServerName) and the HTTP options. It sets no overall timeout: bound
// each request, downloads included, with its context.
func HTTPClient(opts ...Option) (*http.Client, error) {
	s, err := build("HTTPClient", forHTTP, opts)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := client(s)
	if err != nil {
		return nil, err
	}
	pc := httpproxy.FromEnvironment()
	if s.proxySet {
		pc = &httpproxy.Config{HTTPProxy: s.httpProxy, HTTPSProxy: s.httpsProxy, NoProxy: s.noProxy}
	}
	proxyFor := pc.ProxyFunc()
	dialer := &net.Dialer{Timeout: s.dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                  func(r *http.Request) (*url.URL, error) { return proxyFor(r.URL) },
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsCfg,
		TLSHandshakeTimeout:    s.handshakeTimeout,
		ResponseHeaderTimeout:  s.headerTimeout,
		IdleConnTimeout:        s.idleTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           100,
		MaxResponseHeaderBytes: maxResponseHeader,
	}
	// HTTP/1.1 only. net/http offers the transport's ALPN list to an HTTPS
	// proxy too, and a proxy that picks h2 there breaks the CONNECT tunnel
	// (which net/http speaks in HTTP/1.1); large patch downloads gain
	// nothing from HTTP/2 anyway.
	tlsCfg.NextProtos = []string{"http/1.1"}
	g := &guard{next: tr, requireTLS: s.requireTLS, tlsHosts: s.tlsHosts, logger: s.logger}
	return &http.Client{Transport: g, CheckRedirect: g.checkRedirect}, nil
}

// RequireTLS returns nil if u is an https:// URL with a host, and an error
// wrapping ErrNotTLS otherwise. Check a patch URL with it before
// downloading; HTTPClient's WithRequireTLS applies it to every request.
func RequireTLS(u *url.URL) error {
	if u == nil {
		return fmt.Errorf("%w: no URL", ErrNotTLS)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return fmt.Errorf("%w: scheme %q for host %q", ErrNotTLS, u.Scheme, u.Hostname())
	}
	if u.Host == "" {
		return fmt.Errorf("%w: https URL without host", ErrNotTLS)
	}
	return nil
}

// guard enforces TLS requirements before a request reaches the transport,
// so a refused request never opens a connection.
type guard struct {
	next       *http.Transport
	requireTLS bool
	tlsHosts   []string
	logger     *slog.Logger
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.check(req.Context(), req.URL, "request"); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (g *guard) CloseIdleConnections() { g.next.CloseIdleConnections() }

func (g *guard) check(ctx context.Context, u *url.URL, what string) error {
	if u == nil || strings.EqualFold(u.Scheme, "https") {
		return RequireTLS(u)
	}
	if g.requireTLS {
		err := RequireTLS(u)
		g.refused(ctx, u, what, "tls_required")
		return err
	}
	if g.mustTLS(u.Hostname()) {
		g.refused(ctx, u, what, "host_requires_tls")
		return fmt.Errorf("%w: host %q requires TLS", ErrNotTLS, u.Hostname())
	}
	return nil
}

func (g *guard) mustTLS(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, p := range g.tlsHosts {
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			if strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

func (g *guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, maxRedirects)
	}
	if !strings.EqualFold(req.URL.Scheme, "https") {
		for _, v := range via {
			if strings.EqualFold(v.URL.Scheme, "https") {
				g.refused(req.Context(), req.URL, "redirect", "https_downgrade")
				return fmt.Errorf("%w: redirect from https to %s://%s", ErrNotTLS, req.URL.Scheme, req.URL.Host)
			}
		}
	}
	return g.check(req.Context(), req.URL, "redirect")
}

// refused logs a refused request. Only scheme and host are logged: paths
// and queries of download URLs may carry credentials.
func (g *guard) refused(ctx context.Context, u *url.URL, what, reason string) {
	g.logger.LogAttrs(ctx, slog.LevelWarn, "insecure "+what+" refused",
		slog.String("event", "tls_insecure_request_refused"),
		slog.String("reason", reason),
		slog.String("scheme", u.Scheme),
		slog.String("host", u.Hostname()))
}
