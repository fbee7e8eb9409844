package tlsconfig

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewPoolVectors(t *testing.T) {
	tests := []struct {
		file      string
		wantBlock int    // for *PEMError; -1 when the error is not about one block
		wantCerts int    // when the file loads
		reason    string // after "tlsconfig: invalid trust source: <source>: "; "" when the file loads
	}{
		{"good_single.pem", 0, 1, ""},
		{"good_bundle_with_comments.pem", 0, 2, ""},
		{"fail_private_key_in_bundle.pem", 1, 0, `PEM block 1: type "PRIVATE KEY" is not CERTIFICATE`},
		{"fail_crl_block.pem", 1, 0, `PEM block 1: type "X509 CRL" is not CERTIFICATE`},
		{"fail_broken_middle_block.pem", 1, 0, "PEM block 1: malformed PEM"},
		{"fail_truncated_last_block.pem", 1, 0, "PEM block 1: malformed PEM"},
		{"fail_block_with_headers.pem", 0, 0, "PEM block 0: certificate block has headers"},
		{"fail_garbage_der.pem", 0, 0, "PEM block 0: certificate does not parse: x509: malformed certificate"},
		{"fail_no_certificates.pem", -1, 0, "no certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			p, err := NewPool(PEMFile(path))
			if tt.reason == "" {
				if err != nil || p.count != tt.wantCerts {
					t.Fatalf("NewPool(%s) = %v certificates, %v; want %d", tt.file, p, err, tt.wantCerts)
				}
				return
			}
			want := "tlsconfig: invalid trust source: " + path + ": " + tt.reason
			if !errors.Is(err, ErrInvalidTrustSource) || err.Error() != want {
				t.Fatalf("NewPool(%s) error = %v\nwant %s", tt.file, err, want)
			}
			var pe *PEMError
			if tt.wantBlock < 0 {
				if errors.As(err, &pe) {
					t.Errorf("unexpected *PEMError %v", pe)
				}
			} else if !errors.As(err, &pe) || pe.Block != tt.wantBlock || pe.Source != path {
				t.Errorf("error %v does not name %s block %d", err, path, tt.wantBlock)
			}
			// The same bytes from memory fail the same way.
			data, _ := os.ReadFile(path)
			want = "tlsconfig: invalid trust source: " + tt.file + ": " + tt.reason
			if _, err := NewPool(PEM(tt.file, data)); !errors.Is(err, ErrInvalidTrustSource) || err.Error() != want {
				t.Errorf("PEM source: error = %v\nwant %s", err, want)
			}
		})
	}
}

func TestNewPoolHostileSources(t *testing.T) {
	good, _ := os.ReadFile("testdata/good_single.pem")
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.pem")
	f, _ := os.Create(huge)
	f.Truncate(maxPEMBytes + 1)
	f.Close()
	// Files each within maxPEMBytes and each holding a good certificate
	// (the rest is NUL padding, text outside any block), together beyond
	// maxDirBytes. Sparse, so the test writes almost nothing.
	bigDir := t.TempDir()
	for i := 0; int64(i)*(maxPEMBytes-1) <= maxDirBytes; i++ {
		path := writeFile(t, filepath.Join(bigDir, fmt.Sprintf("ca%02d.pem", i)), good)
		must(t, os.Truncate(path, maxPEMBytes-1))
	}
	emptyDir := t.TempDir()
	const invalid = "tlsconfig: invalid trust source: "
	tests := []struct {
		name    string
		sources []PoolSource
		wantErr error
		msg     string // the whole error
	}{
		{"no_sources", nil, ErrInvalidOption, "tlsconfig: invalid option: NewPool needs at least one source"},
		{"zero_source", []PoolSource{{}}, ErrInvalidOption, "tlsconfig: invalid option: zero PoolSource"},
		{"too_many_sources", make([]PoolSource, maxPoolSources+1), ErrInvalidOption, "tlsconfig: invalid option: NewPool takes at most 64 sources, got 65"},
		{"oversized_dir", []PoolSource{PEMDir(bigDir)}, ErrInvalidTrustSource, invalid + bigDir + ": more than 33554432 bytes"},
		{"oversized_file", []PoolSource{PEMFile(huge)}, ErrInvalidTrustSource, invalid + huge + ": more than 8388608 bytes"},
		{"oversized_bytes", []PoolSource{PEM("big", make([]byte, maxPEMBytes+1))}, ErrInvalidTrustSource, invalid + "big: more than 8388608 bytes"},
		{"too_many_blocks", []PoolSource{PEM("many", bytes.Repeat(good, maxPEMBlocks+1))}, ErrInvalidTrustSource, invalid + "many: more than 4096 PEM blocks"},
		{"long_block_type", []PoolSource{PEM("long", pem.EncodeToMemory(&pem.Block{Type: strings.Repeat("X", 100), Bytes: []byte{1}}))},
			ErrInvalidTrustSource, invalid + `long: PEM block 0: type "` + strings.Repeat("X", 40) + `..." is not CERTIFICATE`},
		{"nil_certificates", []PoolSource{Certificates("none", nil)}, ErrInvalidTrustSource, invalid + "none: no certificates"},
		{"empty_dir", []PoolSource{PEMDir(emptyDir)}, ErrInvalidTrustSource, invalid + emptyDir + ": no certificates"},
		{"good_then_bad", []PoolSource{PEM("good", good), PEMFile("testdata/fail_garbage_der.pem")}, ErrInvalidTrustSource,
			invalid + "testdata/fail_garbage_der.pem: PEM block 0: certificate does not parse: x509: malformed certificate"},
		{"missing_file", []PoolSource{PEMFile(filepath.Join(dir, "absent.pem"))}, os.ErrNotExist,
			"tlsconfig: reading trust file: open " + filepath.Join(dir, "absent.pem") + ": no such file or directory"},
		{"missing_dir", []PoolSource{PEMDir(filepath.Join(dir, "absent"))}, os.ErrNotExist,
			"tlsconfig: reading trust directory: open " + filepath.Join(dir, "absent") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPool(tt.sources...); !errors.Is(err, tt.wantErr) || err.Error() != tt.msg {
				t.Fatalf("error = %v\nwant %v: %s", err, tt.wantErr, tt.msg)
			}
		})
	}
}

func TestNewPoolDirectory(t *testing.T) {
	ca1, ca2 := newCA(t, "dir CA 1"), newCA(t, "dir CA 2")
	dir := t.TempDir()
	// Kubernetes-style layout: the real files live in a hidden timestamped
	// directory, reached through the ..data symlink.
	data := filepath.Join(dir, "..2026_11_22")
	os.Mkdir(data, 0o700)
	writeFile(t, filepath.Join(data, "ca1.crt"), ca1.pem)
	writeFile(t, filepath.Join(data, "ca2.crt"), ca2.pem)
	must(t, os.Symlink("..2026_11_22", filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/ca1.crt", filepath.Join(dir, "ca1.crt")))
	must(t, os.Symlink("..data/ca2.crt", filepath.Join(dir, "ca2.crt")))
	os.Mkdir(filepath.Join(dir, "subdir"), 0o700) // directories are skipped

	p, err := NewPool(PEMDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if p.count != 2 {
		t.Fatalf("loaded %d certificates, want 2 (hidden entries must be skipped)", p.count)
	}
	for _, ca := range []*testCA{ca1, ca2} {
		if _, err := ca.cert.Verify(x509.VerifyOptions{Roots: p.CertPool()}); err != nil {
			t.Errorf("%s not trusted: %v", ca.cert.Subject, err)
		}
	}

	// A bad file fails the directory, naming the file.
	bad := writeFile(t, filepath.Join(dir, "zz-bad.crt"), []byte("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"))
	_, err = NewPool(PEMDir(dir))
	var pe *PEMError
	if !errors.Is(err, ErrInvalidTrustSource) || !errors.As(err, &pe) || pe.Source != bad {
		t.Fatalf("error = %v, want ErrInvalidTrustSource naming %s", err, bad)
	}
}

func TestNewPoolWithoutSystemRootsReplacesSystem(t *testing.T) {
	ca := newCA(t, "only CA")
	p, err := NewPool(Certificates("compiled-in", ca.cert))
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the one certificate: a pool that started from the system
	// roots would differ from this one (comparing with the system pool
	// instead could never fail, as adding a CA already makes them differ).
	want := x509.NewCertPool()
	want.AddCert(ca.cert)
	if !p.CertPool().Equal(want) || p.system {
		t.Fatal("pool without SystemRoots holds more than the given certificate")
	}
	if got := p.String(); got != "certificates compiled-in (1 certificates)" {
		t.Errorf("String() = %q", got)
	}
}

// TestSystemRootsHonourSSLCertFile runs a child test process with
// SSL_CERT_FILE pointing at a private CA (system roots load once per
// process, so this needs a fresh one) and checks SystemRoots picks it up.
func TestSystemRootsHonourSSLCertFile(t *testing.T) {
	if path := os.Getenv("LPSEC_TLSCONFIG_CHILD_CA"); path != "" {
		ca, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parsePEMCerts(path, ca)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPool(SystemRoots())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c[0].Verify(x509.VerifyOptions{Roots: p.CertPool()}); err != nil {
			t.Fatalf("CA from SSL_CERT_FILE not in SystemRoots: %v", err)
		}
		return
	}
	ca := newCA(t, "SSL_CERT_FILE CA")
	path := writeFile(t, filepath.Join(t.TempDir(), "ca.pem"), ca.pem)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSystemRootsHonourSSLCertFile$", "-test.v")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+path, "SSL_CERT_DIR=", "LPSEC_TLSCONFIG_CHILD_CA="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func FuzzNewPoolPEM(f *testing.F) {
	vectors, _ := filepath.Glob("testdata/*.pem")
	for _, v := range vectors {
		data, _ := os.ReadFile(v)
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN-----BEGIN CERTIFICATE-----"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := NewPool(PEM("fuzz", data))
		if err != nil {
			if p != nil {
				t.Fatal("pool returned with error")
			}
			return
		}
		// Success means every BEGIN started a certificate that was loaded.
		if n := bytes.Count(data, []byte("-----BEGIN")); p.count != n || n == 0 {
			t.Fatalf("loaded %d certificates from %d blocks", p.count, n)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
