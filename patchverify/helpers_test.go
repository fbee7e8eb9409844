package patchverify

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// The test keys live in testdata (see testdata/keys.txt): generating RSA-4096
// keys under -race would dominate the test time.

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(readTestdata(t, name+".crt"))
	if blk == nil {
		t.Fatalf("%s.crt: no PEM", name)
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	blk, _ := pem.Decode(readTestdata(t, name+".key"))
	if blk == nil {
		t.Fatalf("%s.key: no PEM", name)
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// testModule is a tiny ELF object with a .modinfo section, so modinfo(8)
// can read the modules the tests sign.
func testModule(t testing.TB) []byte { return readTestdata(t, "good_module_unsigned.ko") }

func newTestVerifier(t testing.TB, policy Policy, names ...string) *Verifier {
	t.Helper()
	var certs []*x509.Certificate
	for _, n := range names {
		certs = append(certs, loadCert(t, n))
	}
	v, err := NewVerifier(certs, WithPolicy(policy))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func x509Name(cn string) pkix.Name { return pkix.Name{CommonName: cn} }
