package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpsBackend serves "patch" over Server() with a certificate for names.
func httpsBackend(t *testing.T, ca *testCA, handler http.Handler, names ...string) string {
	t.Helper()
	cert, _, _ := ca.issue(t, leafSpec{}, names...)
	cfg, err := Server(WithCertificate(cert))
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "patch") })
	}
	hs := &http.Server{Handler: handler, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// connectProxy is a CONNECT proxy that tunnels every request to backend,
// whatever host it names, and records the hosts asked for. With tlsCfg it
// speaks TLS to its clients (an "https proxy").
type connectProxy struct {
	backend string
	mu      sync.Mutex
	hosts   []string
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Host)
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.backend)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	go func() { io.Copy(up, buf); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

func startProxy(t *testing.T, p *connectProxy, tlsCfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: p, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if tlsCfg != nil {
		go hs.ServeTLS(ln, "", "")
		t.Cleanup(func() { hs.Close() })
		return "https://" + ln.Addr().String()
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, c *http.Client, rawURL string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	must(t, err)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestHTTPClientThroughConnectProxy(t *testing.T) {
	ca, rogue := newCA(t, "proxy test CA"), newCA(t, "rogue CA")
	// patches.test never resolves (RFC 6761): reaching it proves the proxy
	// was used, since only the proxy maps it to the backend.
	backend := httpsBackend(t, ca, nil, "patches.test")
	proxyCert, _, _ := ca.issue(t, leafSpec{}, "127.0.0.1")
	proxyTLS, err := Server(WithCertificate(proxyCert))
	must(t, err)
	rogueCert, _, _ := rogue.issue(t, leafSpec{}, "127.0.0.1")
	rogueTLS, err := Server(WithCertificate(rogueCert))
	must(t, err)

	tests := []struct {
		name     string
		proxyTLS *tls.Config
		wantErr  bool
	}{
		{"http_proxy", nil, false},
		{"https_proxy_verified", proxyTLS, false},
		{"https_proxy_untrusted_certificate", rogueTLS, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &connectProxy{backend: backend}
			proxyURL := startProxy(t, p, tt.proxyTLS)
			c, err := HTTPClient(WithRootCAs(ca.pool(t)), WithProxy("", proxyURL, "example.org"))
			must(t, err)
			body, err := get(t, c, "https://patches.test/patch")
			if tt.wantErr {
				var unknown x509UnknownAuthority
				if err == nil || !errors.As(err, &unknown) {
					t.Fatalf("error = %v, want unknown authority for the proxy", err)
				}
				if len(p.seen()) != 0 {
					t.Fatalf("CONNECT sent to an unverified proxy: %v", p.seen())
				}
				return
			}
			if err != nil || body != "patch" {
				t.Fatalf("body %q, error %v", body, err)
			}
			if got := p.seen(); len(got) != 1 || got[0] != "patches.test:443" {
				t.Fatalf("proxy saw %v", got)
			}
		})
	}
}

func TestHTTPClientNoProxyList(t *testing.T) {
	c, err := HTTPClient(WithProxy("http://proxy.internal:3128", "https://proxy.internal:3129", "mirror.internal,.corp"))
	must(t, err)
	tr := c.Transport.(*guard).next
	for _, tt := range []struct{ url, want string }{
		{"https://patches.example/x", "https://proxy.internal:3129"},
		{"http://patches.example/x", "http://proxy.internal:3128"},
		{"https://mirror.internal/x", ""},
		{"https://a.b.corp/x", ""},
		{"https://127.0.0.1/x", ""}, // loopback never proxied
	} {
		u, _ := url.Parse(tt.url)
		got, err := tr.Proxy(&http.Request{URL: u})
		must(t, err)
		if (got == nil && tt.want != "") || (got != nil && got.String() != tt.want) {
			t.Errorf("proxy for %s = %v, want %q", tt.url, got, tt.want)
		}
	}
}

func TestHTTPClientProxyFromEnvironment(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://env-proxy.internal:8080")
	t.Setenv("https_proxy", "")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	c, err := HTTPClient()
	must(t, err)
	u, _ := url.Parse("https://patches.example/")
	got, err := c.Transport.(*guard).next.Proxy(&http.Request{URL: u})
	if err != nil || got == nil || got.Host != "env-proxy.internal:8080" {
		t.Fatalf("proxy = %v, %v; want the one from HTTPS_PROXY", got, err)
	}
}

// recordingListener counts accepted connections. Connections are accepted
// in order, so once a later control connection has been counted, any
// earlier one would have been too: that proves a refused request never
// dialled.
type recordingListener struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newRecordingListener(t *testing.T) *recordingListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	r := &recordingListener{ln: ln}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.accepted.Add(1)
			c.Close()
		}
	}()
	return r
}

func (r *recordingListener) url() string { return "http://" + r.ln.Addr().String() + "/patch" }

// assertNoDial makes a control connection and checks it is the first one.
func (r *recordingListener) assertNoDial(t *testing.T) {
	t.Helper()
	c, err := net.Dial("tcp", r.ln.Addr().String())
	must(t, err)
	c.Read(make([]byte, 1)) // returns once the listener has accepted and closed it
	c.Close()
	if n := r.accepted.Load(); n != 1 {
		t.Fatalf("%d connections accepted, want only the control one: a refused request dialled", n)
	}
}

func TestHTTPClientRefusesPlainHTTPBeforeDialling(t *testing.T) {
	ca := newCA(t, "refuse CA")
	tests := []struct {
		name   string
		opts   []Option
		url    func(r *recordingListener, httpsAddr string) string
		detail string // what the ErrNotTLS error says after the sentinel
		reason string
	}{
		{"require_tls_plain_url", []Option{WithRequireTLS()},
			func(r *recordingListener, _ string) string { return r.url() }, `scheme "http" for host "127.0.0.1"`, "tls_required"},
		{"require_tls_redirect_to_http", []Option{WithRequireTLS()},
			func(r *recordingListener, h string) string {
				return "https://" + h + "/to?u=" + url.QueryEscape(r.url())
			}, "redirect from https to http://127.0.0.1:", "https_downgrade"},
		{"https_to_http_redirect", nil,
			func(r *recordingListener, h string) string {
				return "https://" + h + "/to?u=" + url.QueryEscape(r.url())
			}, "redirect from https to http://127.0.0.1:", "https_downgrade"},
		{"host_requires_tls", []Option{WithTLSRequiredFor("127.0.0.1")},
			func(r *recordingListener, _ string) string { return r.url() }, `host "127.0.0.1" requires TLS`, "host_requires_tls"},
		{"wildcard_host_requires_tls", []Option{WithTLSRequiredFor("*.0.0.1")},
			func(r *recordingListener, _ string) string { return r.url() }, `host "127.0.0.1" requires TLS`, "host_requires_tls"},
	}
	redirector := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	httpsAddr := httpsBackend(t, ca, redirector, "127.0.0.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecordingListener(t)
			var logs logRecorder
			c, err := HTTPClient(append(tt.opts, WithRootCAs(ca.pool(t)), WithProxy("", "", ""), WithLogger(logs.logger()))...)
			must(t, err)
			_, err = get(t, c, tt.url(rec, httpsAddr))
			if !errors.Is(err, ErrNotTLS) || !strings.Contains(err.Error(), ErrNotTLS.Error()+": "+tt.detail) {
				t.Fatalf("error = %v, want ErrNotTLS: %s", err, tt.detail)
			}
			rec.assertNoDial(t)
			if !strings.Contains(logs.String(), "event=tls_insecure_request_refused reason="+tt.reason) {
				t.Errorf("log lacks the refusal event:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "/patch") {
				t.Errorf("log carries the URL path:\n%s", logs.String())
			}
		})
	}

	// Control: without enforcement the same plain URL is dialled, so the
	// recording listener does see refused requests' absence for real.
	rec := newRecordingListener(t)
	c, err := HTTPClient(WithProxy("", "", ""), WithTLSRequiredFor("other.example"))
	must(t, err)
	get(t, c, rec.url())
	if rec.accepted.Load() != 1 {
		t.Fatal("control request did not dial")
	}
}

func TestHTTPClientTLSAndTimeouts(t *testing.T) {
	ca := newCA(t, "client CA")
	addr := httpsBackend(t, ca, nil, "127.0.0.1")
	c, err := HTTPClient(WithRootCAs(ca.pool(t)), WithProxy("", "", ""), WithRequireTLS())
	must(t, err)
	if body, err := get(t, c, "https://"+addr+"/"); err != nil || body != "patch" {
		t.Fatalf("body %q, error %v", body, err)
	}
	tr := c.Transport.(*guard).next
	if tr.TLSHandshakeTimeout != DefaultHandshakeTimeout || tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout ||
		tr.IdleConnTimeout != DefaultIdleTimeout || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("transport settings: %+v", tr)
	}
	// Untrusted server: the system pool does not know the test CA.
	sys, err := HTTPClient(WithProxy("", "", ""))
	must(t, err)
	var unknown x509UnknownAuthority
	if _, err := get(t, sys, "https://"+addr+"/"); !errors.As(err, &unknown) {
		t.Fatalf("error = %v, want unknown authority", err)
	}
	// The dial timeout is applied: an impossible one fails the dial.
	fast, err := HTTPClient(WithRootCAs(ca.pool(t)), WithProxy("", "", ""), WithDialTimeout(time.Nanosecond))
	must(t, err)
	var ne net.Error
	if _, err := get(t, fast, "https://"+addr+"/"); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error = %v, want a dial timeout", err)
	}
}

func TestRequireTLS(t *testing.T) {
	tests := []struct {
		name, url string
		detail    string // after "tlsconfig: TLS required but URL is not https: "; "" when accepted
	}{
		{"https", "https://patches.example/p.tar.bz2", ""},
		{"https_upper_case_scheme", "HTTPS://patches.example/p", ""},
		{"plain_http", "http://patches.example/p", `scheme "http" for host "patches.example"`},
		{"ftp", "ftp://patches.example/p", `scheme "ftp" for host "patches.example"`},
		{"relative", "/p.tar.bz2", `scheme "" for host ""`},
		{"https_without_host", "https:///p", "https URL without host"},
		{"opaque_https", "https:patches.example", "https URL without host"},
		{"file", "file:///etc/passwd", `scheme "file" for host ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			must(t, err)
			err = RequireTLS(u)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("RequireTLS(%s) = %v", tt.url, err)
				}
				return
			}
			if want := ErrNotTLS.Error() + ": " + tt.detail; !errors.Is(err, ErrNotTLS) || err.Error() != want {
				t.Fatalf("RequireTLS(%s) = %v, want %s", tt.url, err, want)
			}
		})
	}
	if err := RequireTLS(nil); !errors.Is(err, ErrNotTLS) || err.Error() != ErrNotTLS.Error()+": no URL" {
		t.Fatalf("RequireTLS(nil) = %v", err)
	}
}

func TestTLSRequiredForMatching(t *testing.T) {
	g := &guard{tlsHosts: []string{"sso.example.com", "*.entitlement.example"}}
	for host, want := range map[string]bool{
		"sso.example.com":           true,
		"SSO.Example.COM.":          true,
		"evil-sso.example.com":      false,
		"a.entitlement.example":     true,
		"a.b.entitlement.example":   true,
		"entitlement.example":       false,
		"xentitlement.example":      false,
		"patches.example":           false,
		"sso.example.com.evil.test": false,
	} {
		if got := g.mustTLS(host); got != want {
			t.Errorf("mustTLS(%q) = %v, want %v", host, got, want)
		}
	}
}
