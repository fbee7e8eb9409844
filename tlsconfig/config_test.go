package tlsconfig

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/optiontest"
)

func TestProfileSettings(t *testing.T) {
	ca := newCA(t, "profile CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	for _, p := range []Profile{Intermediate, Modern} {
		t.Run(p.String(), func(t *testing.T) {
			srv, err := Server(WithProfile(p), WithCertificate(cert))
			if err != nil {
				t.Fatal(err)
			}
			cli, err := Client(WithProfile(p))
			if err != nil {
				t.Fatal(err)
			}
			for _, cfg := range []*tls.Config{srv, cli} {
				want := uint16(tls.VersionTLS12)
				if p == Modern {
					want = tls.VersionTLS13
				}
				if cfg.MinVersion != want {
					t.Errorf("MinVersion = %x, want %x", cfg.MinVersion, want)
				}
				for _, id := range cfg.CipherSuites {
					name := tls.CipherSuiteName(id)
					if !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") {
						t.Errorf("suite %s is not ECDHE+AEAD", name)
					}
				}
				if p == Intermediate && len(cfg.CipherSuites) != 6 {
					t.Errorf("%d TLS 1.2 suites, want the 6 of Mozilla intermediate", len(cfg.CipherSuites))
				}
				if !slices.Equal(cfg.CurvePreferences, []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}) {
					t.Errorf("groups = %v", cfg.CurvePreferences)
				}
				if cfg.InsecureSkipVerify || cfg.SessionTicketsDisabled {
					t.Error("verification or tickets disabled")
				}
			}
			if cli.ClientSessionCache == nil {
				t.Error("client has no session cache: resumption impossible")
			}
		})
	}
}

// TestOptionMisuse feeds constructors options that are malformed, missing
// or meant for another constructor: each must fail with ErrInvalidOption
// (or the named sentinel) and a message naming the option, never be
// silently ignored.
func TestOptionMisuse(t *testing.T) {
	ca := newCA(t, "misuse CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	pool := ca.pool(t)
	server := func(o ...Option) error { _, err := Server(append(o, WithCertificate(cert))...); return err }
	client := func(o ...Option) error { _, err := Client(o...); return err }
	httpc := func(o ...Option) error { _, err := HTTPClient(o...); return err }
	tests := []struct {
		name    string
		run     func() error
		wantErr error
		msg     string // the whole error
	}{
		{"server_without_certificate", func() error { _, err := Server(); return err }, ErrInvalidOption, "tlsconfig: invalid option: Server needs WithCertificate or WithCertificateFiles"},
		{"client_ca_pool_on_client", func() error { return client(WithClientCAs(pool)) }, ErrInvalidOption, "tlsconfig: invalid option: WithClientCAs does not apply to Client"},
		{"root_pool_on_server", func() error { return server(WithRootCAs(pool)) }, ErrInvalidOption, "tlsconfig: invalid option: WithRootCAs does not apply to Server"},
		{"server_name_on_http_client", func() error { return httpc(WithServerName("x")) }, ErrInvalidOption, "tlsconfig: invalid option: WithServerName does not apply to HTTPClient"},
		{"proxy_on_tls_client", func() error { return client(WithProxy("http://p:3128", "", "")) }, ErrInvalidOption, "tlsconfig: invalid option: WithProxy does not apply to Client"},
		{"require_tls_on_server", func() error { return server(WithRequireTLS()) }, ErrInvalidOption, "tlsconfig: invalid option: WithRequireTLS does not apply to Server"},
		{"zero_option", func() error { return client(Option{}) }, ErrInvalidOption, "tlsconfig: invalid option: zero Option given to Client"},
		{"unknown_profile", func() error { return client(WithProfile(Profile(7))) }, ErrInvalidOption, "tlsconfig: invalid option: WithProfile: unknown profile 7"},
		{"nil_pool", func() error { return client(WithRootCAs(nil)) }, ErrInvalidOption, "tlsconfig: invalid option: WithRootCAs: nil pool"},
		{"nil_logger", func() error { return client(WithLogger(nil)) }, ErrInvalidOption, "tlsconfig: invalid option: WithLogger: nil logger"},
		{"nil_clock", func() error { return client(WithClock(nil)) }, ErrInvalidOption, "tlsconfig: invalid option: WithClock: nil clock"},
		{"nil_verify", func() error { return client(WithVerifyConnection(nil)) }, ErrInvalidOption, "tlsconfig: invalid option: WithVerifyConnection: nil function"},
		{"empty_certificate", func() error { return client(WithCertificate(tls.Certificate{})) }, ErrInvalidOption, "tlsconfig: invalid option: WithCertificate: certificate without chain or key"},
		{"empty_cert_file_name", func() error { return client(WithCertificateFiles("", "k")) }, ErrInvalidOption, "tlsconfig: invalid option: WithCertificateFiles: empty file name"},
		{"certificate_and_files", func() error { return server(WithCertificateFiles("/nonexistent/c", "/nonexistent/k")) }, ErrInvalidOption, "tlsconfig: invalid option: WithCertificate and WithCertificateFiles cannot be combined"},
		{"missing_cert_files", func() error { return client(WithCertificateFiles("/nonexistent/c", "/nonexistent/k")) }, ErrKeyPair, "tlsconfig: unusable certificate/key pair: stat /nonexistent/c: no such file or directory"},
		{"zero_dial_timeout", func() error { return httpc(WithDialTimeout(0)) }, ErrInvalidOption, "tlsconfig: invalid option: WithDialTimeout: duration 0s is not positive"},
		{"negative_idle_timeout", func() error { return httpc(WithIdleTimeout(-time.Second)) }, ErrInvalidOption, "tlsconfig: invalid option: WithIdleTimeout: duration -1s is not positive"},
		{"zero_reload_interval", func() error { return server(WithReloadInterval(0)) }, ErrInvalidOption, "tlsconfig: invalid option: WithReloadInterval: duration 0s is not positive"},
		{"socks_proxy_url", func() error { return httpc(WithProxy("", "socks5://p:1080", "")) }, ErrInvalidOption, "tlsconfig: invalid option: WithProxy: proxy URL must be http://host[:port] or https://host[:port]"},
		{"proxy_url_without_host", func() error { return httpc(WithProxy("http://", "", "")) }, ErrInvalidOption, "tlsconfig: invalid option: WithProxy: proxy URL must be http://host[:port] or https://host[:port]"},
		{"proxy_url_unparsable", func() error { return httpc(WithProxy("http://[::1", "", "")) }, ErrInvalidOption, "tlsconfig: invalid option: WithProxy: proxy URL does not parse"},
		{"tls_host_with_port", func() error { return httpc(WithTLSRequiredFor("example.com:443")) }, ErrInvalidOption, `tlsconfig: invalid option: WithTLSRequiredFor: host pattern "example.com:443" is not a host name or *.domain`},
		{"nil_client_pool", func() error { return server(WithClientCAs(nil)) }, ErrInvalidOption, "tlsconfig: invalid option: WithClientCAs: nil pool"},
		{"client_ca_pool_on_http_client", func() error { return httpc(WithClientCAs(pool)) }, ErrInvalidOption, "tlsconfig: invalid option: WithClientCAs does not apply to HTTPClient"},
		{"empty_server_name", func() error { return client(WithServerName("")) }, ErrInvalidOption, "tlsconfig: invalid option: WithServerName: empty server name"},
		{"server_name_on_server", func() error { return server(WithServerName("x")) }, ErrInvalidOption, "tlsconfig: invalid option: WithServerName does not apply to Server"},
		{"empty_key_file_name", func() error { return server(WithCertificateFiles("c", "")) }, ErrInvalidOption, "tlsconfig: invalid option: WithCertificateFiles: empty file name"},
		{"zero_handshake_timeout", func() error { return httpc(WithHandshakeTimeout(0)) }, ErrInvalidOption, "tlsconfig: invalid option: WithHandshakeTimeout: duration 0s is not positive"},
		{"negative_header_timeout", func() error { return httpc(WithResponseHeaderTimeout(-1)) }, ErrInvalidOption, "tlsconfig: invalid option: WithResponseHeaderTimeout: duration -1ns is not positive"},
		{"dial_timeout_on_server", func() error { return server(WithDialTimeout(time.Second)) }, ErrInvalidOption, "tlsconfig: invalid option: WithDialTimeout does not apply to Server"},
		{"idle_timeout_on_client", func() error { return client(WithIdleTimeout(time.Second)) }, ErrInvalidOption, "tlsconfig: invalid option: WithIdleTimeout does not apply to Client"},
		{"tls_hosts_on_client", func() error { return client(WithTLSRequiredFor("a.example")) }, ErrInvalidOption, "tlsconfig: invalid option: WithTLSRequiredFor does not apply to Client"},
		{"tls_host_wildcard_only", func() error { return httpc(WithTLSRequiredFor("*.")) }, ErrInvalidOption, `tlsconfig: invalid option: WithTLSRequiredFor: host pattern "*." is not a host name or *.domain`},
	}
	var msgs []string
	for _, tt := range tests {
		msgs = append(msgs, tt.msg)
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.wantErr) || err.Error() != tt.msg {
				t.Fatalf("error = %v\nwant %v: %s", err, tt.wantErr, tt.msg)
			}
		})
	}
	optiontest.RequireEveryOption(t, "Option", msgs)
}

func TestGoClientNegotiatesX25519MLKEM768(t *testing.T) {
	ca := newCA(t, "pq CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	srv, err := Server(WithCertificate(cert))
	must(t, err)
	addr, results := tlsServer(t, srv)
	cli, err := Client(WithRootCAs(ca.pool(t)), WithServerName("localhost"))
	must(t, err)
	st, err := dial(t, addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS13 || st.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("negotiated %s with %v, want TLS 1.3 with X25519MLKEM768", tls.VersionName(st.Version), st.CurveID)
	}
	if r := <-results; r.err != nil || r.state.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("server saw %v, %v", r.err, r.state.CurveID)
	}

	// A TLS 1.2 peer gets an ECDHE AEAD suite (ML-KEM exists only in 1.3).
	tls12 := cli.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	st, err = dial(t, addr, tls12)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 || st.CurveID != tls.X25519 {
		t.Fatalf("TLS 1.2: %s %v", tls.CipherSuiteName(st.CipherSuite), st.CurveID)
	}
}

func TestServerRefusesWeakPeers(t *testing.T) {
	ca := newCA(t, "weak CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	inter, _ := Server(WithCertificate(cert))
	modern, _ := Server(WithCertificate(cert), WithProfile(Modern))
	base := &tls.Config{RootCAs: ca.pool(t).CertPool(), ServerName: "localhost"}
	tests := []struct {
		name   string
		server *tls.Config
		client func(*tls.Config)
		want   string // in the server's handshake error
	}{
		{"tls11_client", inter, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, "unsupported versions"},
		{"cbc_only_client", inter, func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
		}, "no cipher suite"},
		{"p521_only_client", inter, func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP521} }, "no key exchanges supported"},
		{"p521_only_tls12_client", inter, func(c *tls.Config) {
			// In TLS 1.2 no common group leaves no usable ECDHE suite.
			c.MaxVersion = tls.VersionTLS12
			c.CurvePreferences = []tls.CurveID{tls.CurveP521}
		}, "no cipher suite"},
		{"tls12_client_vs_modern", modern, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, "unsupported versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := tlsServer(t, tt.server)
			c := base.Clone()
			tt.client(c)
			if _, err := dial(t, addr, c); err == nil {
				t.Fatal("handshake succeeded")
			}
			r := <-results
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("server handshake error = %v, want one containing %q", r.err, tt.want)
			}
		})
	}
}

// TestVerifyConnectionOnResumption checks the custom verification runs on
// resumed sessions too, on both sides of a mutual-TLS connection.
func TestVerifyConnectionOnResumption(t *testing.T) {
	ca, clientCA := newCA(t, "server CA"), newCA(t, "client CA")
	srvCert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	cliCert, _, _ := clientCA.issue(t, leafSpec{client: true}, "machine-1")
	var srvCalls, cliCalls, resumed atomic.Int32
	var refuse atomic.Bool
	srv, err := Server(WithCertificate(srvCert), WithClientCAs(clientCA.pool(t)),
		WithVerifyConnection(func(cs tls.ConnectionState) error {
			srvCalls.Add(1)
			if cs.DidResume {
				resumed.Add(1)
			}
			if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != "machine-1" {
				return errors.New("unexpected client")
			}
			if refuse.Load() {
				return errors.New("client revoked")
			}
			return nil
		}))
	must(t, err)
	addr, results := tlsServer(t, srv)
	cli, err := Client(WithRootCAs(ca.pool(t)), WithServerName("localhost"), WithCertificate(cliCert),
		WithVerifyConnection(func(tls.ConnectionState) error { cliCalls.Add(1); return nil }))
	must(t, err)

	if _, err := dial(t, addr, cli); err != nil {
		t.Fatal(err)
	}
	<-results
	st, err := dial(t, addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	<-results
	if !st.DidResume {
		t.Fatal("second connection did not resume: session tickets not working")
	}
	if srvCalls.Load() != 2 || cliCalls.Load() != 2 || resumed.Load() != 1 {
		t.Fatalf("VerifyConnection calls: server %d (resumed %d), client %d; want 2 (1), 2",
			srvCalls.Load(), resumed.Load(), cliCalls.Load())
	}
	// A verdict that changes after the first handshake applies to resumption.
	refuse.Store(true)
	dial(t, addr, cli)
	if r := <-results; r.err == nil || !strings.Contains(r.err.Error(), "revoked") || resumed.Load() != 2 {
		t.Fatalf("resumed connection of a revoked client: error %v, resumed handshakes %d", r.err, resumed.Load())
	}
}

func TestMutualTLSRefusesClients(t *testing.T) {
	ca, clientCA, otherCA := newCA(t, "server CA"), newCA(t, "client CA"), newCA(t, "other CA")
	srvCert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	good, _, _ := clientCA.issue(t, leafSpec{client: true}, "machine-1")
	foreign, _, _ := otherCA.issue(t, leafSpec{client: true}, "machine-2")
	srv, err := Server(WithCertificate(srvCert), WithClientCAs(clientCA.pool(t)))
	must(t, err)
	addr, results := tlsServer(t, srv)
	// present sends cert whatever CAs the server asks for: a crypto/tls
	// client given Certificates withholds one the server's CA list does
	// not name, and the server would then never judge it.
	present := func(cert tls.Certificate) *tls.Certificate { return &cert }
	tests := []struct {
		name string
		cert *tls.Certificate
		want string // in the server's handshake error; "" for success
	}{
		{"client_from_trusted_ca", present(good), ""},
		{"no_client_certificate", nil, "client didn't provide a certificate"},
		{"client_from_foreign_ca", present(foreign), "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := Client(WithRootCAs(ca.pool(t)), WithServerName("localhost"))
			must(t, err)
			cli.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if tt.cert == nil {
					return &tls.Certificate{}, nil
				}
				return tt.cert, nil
			}
			_, cerr := dial(t, addr, cli)
			r := <-results
			if tt.want == "" {
				if r.err != nil || cerr != nil {
					t.Fatalf("handshake failed: server %v, client %v", r.err, cerr)
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("server handshake error = %v, want one containing %q", r.err, tt.want)
			}
		})
	}
}
