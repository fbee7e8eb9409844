package patchverify

import (
	"crypto/x509"
	"testing"

	"github.com/smallstep/pkcs7"
)

// smallstep/pkcs7 is a second, independently written PKCS#7 implementation.
// lpsec's own parser is stricter (it refuses what pkcs7 tolerates, such as
// embedded certificates and signed attributes), but on well-formed kernel
// module signatures the two must agree: pkcs7 verifies what SignModule and
// the kernel's sign-file produce, and refuses them over altered content.
// (pkcs7 v0.2.3 finds signers only by issuer and serial number, so the
// subject-key-identifier form, SignWithKeyID, is checked against openssl
// alone, in peer_test.go.)
func TestPKCS7LibraryAgrees(t *testing.T) {
	mod := testModule(t)
	tests := []struct {
		name, cert string
		signed     []byte
	}{
		{"SignModule rsa4096 sha512", "vendor_rsa4096", signWith(t, mod, "vendor_rsa4096")},
		{"SignModule rsa3072 sha512", "vendor_rsa3072", signWith(t, mod, "vendor_rsa3072")},
		{"sign-file rsa4096 sha512", "vendor_rsa4096", readTestdata(t, "good_signfile_rsa4096_sha512.ko")},
		{"sign-file rsa3072 sha512", "vendor_rsa3072", readTestdata(t, "good_signfile_rsa3072_sha512.ko")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, der := split(t, tt.signed)
			cert := loadCert(t, tt.cert)
			verify := func(content []byte) error {
				p7, err := pkcs7.Parse(der)
				if err != nil {
					t.Fatalf("pkcs7.Parse: %v", err)
				}
				// Kernel module signatures are detached and carry no
				// certificates (sign-file -nocerts): supply both.
				p7.Content = content
				p7.Certificates = []*x509.Certificate{cert}
				return p7.Verify()
			}
			if err := verify(content); err != nil {
				t.Fatalf("pkcs7 refused a signature lpsec accepts: %v", err)
			}
			altered := append(append([]byte(nil), content...), 0)
			if err := verify(altered); err == nil {
				t.Fatal("pkcs7 verified the signature over altered content")
			}
			// And lpsec agrees on both.
			v := newTestVerifier(t, PolicyLivepatch, tt.cert)
			if _, err := v.VerifyModule(tt.signed); err != nil {
				t.Fatalf("VerifyModule: %v", err)
			}
		})
	}
}
