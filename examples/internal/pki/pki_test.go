package pki

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/testenv"
)

// TestSubjectKeyIDMatchesOpenSSL: the identifier NewCodeSigning writes is
// the one openssl's subjectKeyIdentifier=hash computes for the same key,
// which is what sign-file -k and the kernel look signers up by.
func TestSubjectKeyIDMatchesOpenSSL(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	p, err := NewCodeSigning("test", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	if err := p.Write(cert, key); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "ref.pem")
	if out, err := exec.Command(openssl, "req", "-new", "-x509", "-key", key, "-subj", "/CN=ref", "-addext", "subjectKeyIdentifier=hash", "-out", ref).CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	refs, err := ReadCerts(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(refs[0].SubjectKeyId, p.Cert.SubjectKeyId) {
		t.Errorf("subject key identifier %X, openssl %X", p.Cert.SubjectKeyId, refs[0].SubjectKeyId)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestParseCertsNamesTheBadBlock(t *testing.T) {
	ca, err := NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(CertPEM(ca.Cert), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...)
	if _, err := ParseCerts(bad, "bundle.pem"); err == nil || !strings.Contains(err.Error(), "bundle.pem: PEM block 2") {
		t.Fatalf("err = %v, want it to name block 2", err)
	}
	if _, err := ParseCerts([]byte("not a certificate"), "x.pem"); err == nil {
		t.Fatal("garbage parsed as a certificate")
	}
}
