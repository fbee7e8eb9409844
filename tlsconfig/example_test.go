package tlsconfig_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/lpsec/lpsec/tlsconfig"
)

// A live-patch server: certificates from a mounted secret, picked up when
// the secret is updated, and machine clients authenticated by certificate.
func ExampleServer() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	clientCAs, err := tlsconfig.NewPool(tlsconfig.PEMFile("/etc/livepatch/client-ca.pem"))
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := tlsconfig.Server(
		tlsconfig.WithCertificateFiles("/etc/livepatch/tls/tls.crt", "/etc/livepatch/tls/tls.key"),
		tlsconfig.WithClientCAs(clientCAs),
		tlsconfig.WithLogger(logger),
	)
	if err != nil {
		log.Fatal(err)
	}
	logger.Info("tls settings", "describe", tlsconfig.Describe(cfg, clientCAs))
	srv := &http.Server{Addr: ":8443", TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServeTLS("", "")) // certificates come from cfg
}

// A client that talks TLS 1.3 only, with settings printed for the log.
func ExampleClient() {
	cfg, err := tlsconfig.Client(tlsconfig.WithProfile(tlsconfig.Modern), tlsconfig.WithServerName("db.internal"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(tlsconfig.Describe(cfg))
	// Output:
	// versions: TLS 1.3
	// tls1.3 suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 (fixed by crypto/tls)
	// groups: X25519MLKEM768, X25519, CurveP256, CurveP384
	// session tickets: on
	// client session cache: on
	// server name: db.internal
	// root CAs: system (SSL_CERT_FILE/SSL_CERT_DIR honoured)
}

// A live-patch client: system roots plus the user's extra CA file, proxies
// from the environment, and patch downloads refused unless over TLS.
func ExampleHTTPClient() {
	roots, err := tlsconfig.NewPool(tlsconfig.SystemRoots(), tlsconfig.PEMFile("testdata/good_single.pem"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := tlsconfig.HTTPClient(
		tlsconfig.WithRootCAs(roots),
		tlsconfig.WithDialTimeout(12*time.Second),
		tlsconfig.WithRequireTLS(),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://patches.example/livepatch.tar.bz2", nil)
	_, err = client.Do(req) // refused before any connection is made
	fmt.Println(errors.Is(err, tlsconfig.ErrNotTLS))
	// Output: true
}

// Check a download URL handed over by the server before using it.
func ExampleRequireTLS() {
	for _, raw := range []string{"https://patches.example/p.tar.bz2", "http://patches.example/p.tar.bz2"} {
		u, _ := url.Parse(raw)
		fmt.Println(tlsconfig.RequireTLS(u))
	}
	// Output:
	// <nil>
	// tlsconfig: TLS required but URL is not https: scheme "http" for host "patches.example"
}

// Every PEM block of a trust source must be a certificate: a private key
// pasted into a CA bundle fails loading and the error names the block.
func ExampleNewPool() {
	pool, err := tlsconfig.NewPool(tlsconfig.PEMFile("testdata/good_bundle_with_comments.pem"))
	fmt.Println(pool, err)

	_, err = tlsconfig.NewPool(tlsconfig.PEMFile("testdata/fail_private_key_in_bundle.pem"))
	var pe *tlsconfig.PEMError
	fmt.Println(errors.As(err, &pe), pe.Block, errors.Is(err, tlsconfig.ErrInvalidTrustSource))
	fmt.Println(err)
	// Output:
	// file testdata/good_bundle_with_comments.pem (2 certificates) <nil>
	// true 1 true
	// tlsconfig: invalid trust source: testdata/fail_private_key_in_bundle.pem: PEM block 1: type "PRIVATE KEY" is not CERTIFICATE
}
