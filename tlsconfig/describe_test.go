package tlsconfig

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	ca, clientCA := newCA(t, "describe CA"), newCA(t, "client CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "patches.example")
	clientPool := clientCA.pool(t)
	srv, err := Server(WithCertificate(cert), WithClientCAs(clientPool))
	must(t, err)
	got := Describe(srv, clientPool)
	for _, want := range []string{
		"versions: TLS 1.2, TLS 1.3\n",
		"tls1.2 suites: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n",
		"groups: X25519MLKEM768, X25519, CurveP256, CurveP384\n",
		"session tickets: on\n",
		"certificate: CN=patches.example, serial ",
		"client auth: RequireAndVerifyClientCert\n",
		"client CAs: pem client CA (1 certificates)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "PRIVATE") {
		t.Fatal("Describe prints key material")
	}
	// Without the pool, its sources are unknown but its presence is shown.
	if got := Describe(srv); !strings.Contains(got, "client CAs: custom pool\n") {
		t.Errorf("Describe without pools:\n%s", got)
	}
	// Configurations not built here are described honestly, not flattered.
	got = Describe(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
	for _, want := range []string{"versions: TLS 1.0, TLS 1.1, TLS 1.2, TLS 1.3\n", "tls1.2 suites: crypto/tls defaults\n", "verification: DISABLED"} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe(foreign) lacks %q:\n%s", want, got)
		}
	}
	if Describe(nil) == "" {
		t.Error("Describe(nil) is empty")
	}
}
