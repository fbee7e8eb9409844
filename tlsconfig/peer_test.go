package tlsconfig

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/testenv"
)

// rsaServer starts Server() with an RSA certificate (so that the
// ECDHE-RSA suites peers ask for are the ones being judged) and returns its
// address, the handshake results and the CA file.
func rsaServer(t *testing.T, opts ...Option) (string, chan handshakeResult, string) {
	t.Helper()
	ca := newCA(t, "peer CA")
	cert, _, _ := ca.issue(t, leafSpec{key: rsaKey()}, "localhost", "127.0.0.1")
	srv, err := Server(append(opts, WithCertificate(cert))...)
	must(t, err)
	addr, results := tlsServer(t, srv)
	return addr, results, writeFile(t, filepath.Join(t.TempDir(), "ca.pem"), ca.pem)
}

func runPeer(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOpenSSLPeer(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	addr, results, caFile := rsaServer(t)
	tests := []struct {
		name      string
		args      []string
		ok        bool
		serverErr string // in the server's handshake error when refused
		protocol  string // in s_client's output when accepted
	}{
		// SECLEVEL=0 lets openssl 3 offer TLS 1.1 and SHA-1 suites at all,
		// so the refusal observed is the server's.
		{"tls1_1_refused", []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, false, "unsupported versions", ""},
		{"tls1_2_cbc_refused", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA@SECLEVEL=0"}, false, "no cipher suite", ""},
		{"tls1_2_cbc256_refused", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA@SECLEVEL=0"}, false, "no cipher suite", ""},
		{"tls1_2_p521_only_refused", []string{"-tls1_2", "-groups", "P-521"}, false, "no cipher suite", ""},
		{"tls1_3_p521_only_refused", []string{"-tls1_3", "-groups", "P-521"}, false, "no key exchanges supported", ""},
		{"tls1_2_gcm_accepted", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, true, "", "TLSv1.2"},
		{"tls1_3_accepted", []string{"-tls1_3"}, true, "", "TLSv1.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"s_client", "-connect", addr, "-servername", "localhost",
				"-CAfile", caFile, "-verify_return_error"}, tt.args...)
			out, err := runPeer(t, openssl, args...)
			r := <-results
			if tt.ok {
				if err != nil || r.err != nil {
					t.Fatalf("openssl: %v; server: %v\n%s", err, r.err, out)
				}
				if !strings.Contains(out, tt.protocol) || !strings.Contains(out, "Verify return code: 0 (ok)") {
					t.Fatalf("openssl output lacks %s / verification:\n%s", tt.protocol, out)
				}
				return
			}
			if err == nil || r.err == nil {
				t.Fatalf("handshake not refused: openssl %v, server %v\n%s", err, r.err, out)
			}
			if !strings.Contains(r.err.Error(), tt.serverErr) {
				t.Fatalf("server refused for another reason: %v", r.err)
			}
		})
	}
}

func TestCurlPeer(t *testing.T) {
	curl := testenv.LookPath(t, "curl", "curl")
	ca := newCA(t, "curl CA")
	cert, _, _ := ca.issue(t, leafSpec{}, "localhost")
	cfg, err := Server(WithCertificate(cert))
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("patched\n")) }),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refusals below are expected
	}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	caFile := writeFile(t, filepath.Join(t.TempDir(), "ca.pem"), ca.pem)
	port := ln.Addr().(*net.TCPAddr).Port
	url := "https://localhost:" + strconv.Itoa(port) + "/"
	resolve := "localhost:" + strconv.Itoa(port) + ":127.0.0.1"

	out, err := runPeer(t, curl, "-sS", "-v", "--cacert", caFile, "--resolve", resolve, url)
	if err != nil || !strings.Contains(out, "patched") || !strings.Contains(out, "TLSv1.3") {
		t.Fatalf("curl --cacert: %v\n%s", err, out)
	}
	// Without the CA, curl must refuse the server: the certificate is
	// really being verified, not accepted blindly.
	if out, err := runPeer(t, curl, "-sS", "--resolve", resolve, url); err == nil {
		t.Fatalf("curl accepted an untrusted server:\n%s", out)
	}
	// A curl limited to TLS 1.1 is refused.
	if out, err := runPeer(t, curl, "-sS", "--cacert", caFile, "--resolve", resolve, "--tlsv1.1", "--tls-max", "1.1",
		"--ciphers", "DEFAULT@SECLEVEL=0", url); err == nil {
		t.Fatalf("curl with TLS 1.1 accepted:\n%s", out)
	}
}

func TestSSLScanReport(t *testing.T) {
	sslscan := testenv.LookPath(t, "sslscan", "sslscan")
	addr, _, _ := rsaServer(t)
	out, err := runPeer(t, sslscan, "--no-colour", "--no-heartbleed", "--no-check-certificate", addr)
	if err != nil {
		t.Fatalf("sslscan: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`TLSv1\.0\s+disabled`),
		regexp.MustCompile(`TLSv1\.1\s+disabled`),
		regexp.MustCompile(`TLSv1\.2\s+enabled`),
		regexp.MustCompile(`TLSv1\.3\s+enabled`),
		regexp.MustCompile(`(?m)^(Preferred|Accepted)\s+TLSv1\.2.*ECDHE-RSA-AES128-GCM-SHA256`),
	} {
		if !want.MatchString(out) {
			t.Errorf("sslscan report lacks %v", want)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^(Preferred|Accepted).*(CBC|-SHA\s|RC4|3DES|DES-CBC|NULL)`),
		regexp.MustCompile(`(?m)^(Preferred|Accepted)\s+(SSLv|TLSv1\.0|TLSv1\.1)`),
		regexp.MustCompile(`(?i)(P-521|secp521r1)`),
	} {
		if m := bad.FindString(out); m != "" {
			t.Errorf("sslscan report shows %q", m)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}
