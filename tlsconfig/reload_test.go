package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretDir mimics a Kubernetes secret volume: tls.crt and tls.key are
// symlinks through ..data to a timestamped directory, and an update
// renames a new ..data symlink over the old one.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func (s *secretDir) publish(certPEM, keyPEM []byte) {
	s.t.Helper()
	s.gen++
	ts := fmt.Sprintf("..2026_11_22_%02d", s.gen)
	must(s.t, os.Mkdir(filepath.Join(s.dir, ts), 0o700))
	writeFile(s.t, filepath.Join(s.dir, ts, "tls.crt"), certPEM)
	writeFile(s.t, filepath.Join(s.dir, ts, "tls.key"), keyPEM)
	tmp := filepath.Join(s.dir, "..data_tmp")
	must(s.t, os.Symlink(ts, tmp))
	must(s.t, os.Rename(tmp, filepath.Join(s.dir, "..data")))
	if s.gen == 1 {
		must(s.t, os.Symlink("..data/tls.crt", filepath.Join(s.dir, "tls.crt")))
		must(s.t, os.Symlink("..data/tls.key", filepath.Join(s.dir, "tls.key")))
	}
}

func TestCertificateReloadSymlinkSwap(t *testing.T) {
	ca := newCA(t, "reload CA")
	_, cert1, key1 := ca.issue(t, leafSpec{}, "localhost")
	_, cert2, key2 := ca.issue(t, leafSpec{}, "localhost")
	_, cert3, _ := ca.issue(t, leafSpec{}, "localhost")
	_, expired, expiredKey := ca.issue(t, leafSpec{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, "localhost")

	sec := &secretDir{t: t, dir: t.TempDir()}
	sec.publish(cert1, key1)
	clock := newFakeClock()
	var log logRecorder
	srv, err := Server(
		WithCertificateFiles(filepath.Join(sec.dir, "tls.crt"), filepath.Join(sec.dir, "tls.key")),
		WithClock(clock.now), WithLogger(log.logger()))
	must(t, err)
	addr, results := tlsServer(t, srv)
	cli, err := Client(WithRootCAs(ca.pool(t)), WithServerName("localhost"))
	must(t, err)
	cli.ClientSessionCache = nil // each handshake must present the current certificate

	serialOf := func(certPEM []byte) *big.Int {
		c, err := parsePEMCerts("", certPEM)
		must(t, err)
		return c[0].SerialNumber
	}
	handshake := func() *x509.Certificate {
		t.Helper()
		st, err := dial(t, addr, cli)
		if err != nil {
			t.Fatal(err)
		}
		<-results
		return st.PeerCertificates[0]
	}
	expect := func(step string, want []byte) {
		t.Helper()
		if got := handshake().SerialNumber; got.Cmp(serialOf(want)) != 0 {
			t.Fatalf("%s: server presented serial %v, want %v", step, got, serialOf(want))
		}
	}

	expect("initial", cert1)

	sec.publish(cert2, key2)
	expect("swap within the reload interval", cert1) // rate limit: no check yet
	clock.advance(DefaultReloadInterval)
	expect("swap after the reload interval", cert2)
	if !strings.Contains(log.String(), "event=tls_cert_reloaded") {
		t.Errorf("no tls_cert_reloaded event in log:\n%s", log.String())
	}

	// Bad pairs are refused and the current one stays.
	for _, bad := range []struct {
		name      string
		cert, key []byte
		reason    string
	}{
		{"mismatched key", cert3, key2, "private key does not match"},
		{"expired certificate", expired, expiredKey, "valid only from"},
		{"garbage", []byte("not a certificate"), key2, "failed to find any PEM data"},
	} {
		sec.publish(bad.cert, bad.key)
		clock.advance(DefaultReloadInterval)
		expect(bad.name, cert2)
		if !strings.Contains(log.String(), "event=tls_cert_reload_failed") || !strings.Contains(log.String(), bad.reason) {
			t.Errorf("%s: no tls_cert_reload_failed event with %q in log:\n%s", bad.name, bad.reason, log.String())
		}
	}
	if strings.Contains(log.String(), "PRIVATE KEY") {
		t.Fatal("log contains key material")
	}

	// Repair: a good pair published after bad ones is picked up.
	_, cert4, key4 := ca.issue(t, leafSpec{}, "localhost")
	sec.publish(cert4, key4)
	clock.advance(DefaultReloadInterval)
	expect("repaired", cert4)
}

func TestCertificateReloadInPlaceRewrite(t *testing.T) {
	ca := newCA(t, "rewrite CA")
	_, cert1, key1 := ca.issue(t, leafSpec{}, "localhost")
	_, cert2, key2 := ca.issue(t, leafSpec{}, "localhost")
	dir := t.TempDir()
	certFile := writeFile(t, filepath.Join(dir, "cert.pem"), cert1)
	keyFile := writeFile(t, filepath.Join(dir, "key.pem"), key1)
	clock := newFakeClock()
	cli, err := Client(WithCertificateFiles(certFile, keyFile), WithClock(clock.now))
	must(t, err)
	get := func() *big.Int {
		c, err := cli.GetClientCertificate(&tls.CertificateRequestInfo{})
		must(t, err)
		return c.Leaf.SerialNumber
	}
	first := get()
	writeFile(t, certFile, cert2)
	writeFile(t, keyFile, key2)
	// Make sure the modification time moved even on coarse-grained filesystems.
	later := time.Now().Add(time.Minute)
	must(t, os.Chtimes(certFile, later, later))
	clock.advance(time.Hour)
	if second := get(); second.Cmp(first) == 0 {
		t.Fatal("rewritten files not reloaded")
	}
}

func TestCertificateFilesInitialLoadFails(t *testing.T) {
	ca := newCA(t, "initial CA")
	_, cert, _ := ca.issue(t, leafSpec{}, "localhost")
	_, _, otherKey := ca.issue(t, leafSpec{}, "localhost")
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.pem")
	f, _ := os.Create(huge)
	f.Truncate(maxKeyPairBytes + 1)
	f.Close()
	tests := []struct {
		name      string
		cert, key string
	}{
		{"mismatched_key", writeFile(t, filepath.Join(dir, "c.pem"), cert), writeFile(t, filepath.Join(dir, "k.pem"), otherKey)},
		{"oversized_cert_file", huge, filepath.Join(dir, "k.pem")},
		{"missing_key", filepath.Join(dir, "c.pem"), filepath.Join(dir, "absent.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Server(WithCertificateFiles(tt.cert, tt.key)); !errors.Is(err, ErrKeyPair) {
				t.Fatalf("error = %v, want ErrKeyPair", err)
			}
		})
	}
}

// TestCertificateReloadConcurrent swaps files while many handshakes ask for
// the certificate: run under -race, it checks reloads never hand out a
// missing or half-built certificate.
func TestCertificateReloadConcurrent(t *testing.T) {
	ca := newCA(t, "concurrent CA")
	sec := &secretDir{t: t, dir: t.TempDir()}
	_, c, k := ca.issue(t, leafSpec{}, "localhost")
	sec.publish(c, k)
	clock := newFakeClock()
	srv, err := Server(WithCertificateFiles(filepath.Join(sec.dir, "tls.crt"), filepath.Join(sec.dir, "tls.key")),
		WithClock(clock.now), WithReloadInterval(time.Millisecond))
	must(t, err)
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				cert, err := srv.GetCertificate(&tls.ClientHelloInfo{})
				if err != nil || cert == nil || cert.Leaf == nil || cert.PrivateKey == nil {
					errc <- fmt.Errorf("GetCertificate = %v, %v", cert, err)
					return
				}
			}
		}()
	}
	for range 10 {
		_, c, k := ca.issue(t, leafSpec{}, "localhost")
		sec.publish(c, k)
		clock.advance(time.Second)
	}
	close(stop)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
