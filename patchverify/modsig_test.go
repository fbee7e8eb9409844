package patchverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// split returns the content, the DER message and the trailer of a signed module.
func split(t testing.TB, signed []byte) (content, der []byte) {
	t.Helper()
	s, err := ParseModuleSignature(signed)
	if err != nil {
		t.Fatal(err)
	}
	return s.Content, s.PKCS7
}

// rewrap appends der and a correct trailer to content: for vectors whose
// PKCS#7 message is altered.
func rewrap(content, der []byte) []byte {
	out := append(append([]byte(nil), content...), der...)
	var ms [12]byte
	ms[2] = idTypePKCS7
	binary.BigEndian.PutUint32(ms[8:], uint32(len(der)))
	return append(append(out, ms[:]...), moduleSigMagic...)
}

func mutate(b []byte, f func(b []byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

// trailerAt returns a mutation setting byte i of struct module_signature.
func trailerAt(i int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[len(b)-trailerLen+i] = v; return b }
}

func setSigLen(n uint32) func([]byte) []byte {
	return func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[len(b)-len(moduleSigMagic)-4:], n)
		return b
	}
}

func TestVerifyModuleHostile(t *testing.T) {
	mod := testModule(t)
	signed, err := SignModule(mod, loadKey(t, "vendor_rsa4096"), loadCert(t, "vendor_rsa4096"))
	if err != nil {
		t.Fatal(err)
	}
	signedKeyID, err := SignModule(mod, loadKey(t, "vendor_rsa4096"), loadCert(t, "vendor_rsa4096"), SignWithKeyID())
	if err != nil {
		t.Fatal(err)
	}
	content, der := split(t, signed)
	_, derKeyID := split(t, signedKeyID)
	sigLen := uint32(len(der))
	serial := loadCert(t, "vendor_rsa4096").SerialNumber.Bytes()

	livepatch := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096", "vendor_rsa3072", "short_rsa2048", "ecdsa_p384")
	kernel := newTestVerifier(t, PolicyKernel, "vendor_rsa4096", "ecdsa_p256", "ecdsa_p384")
	attackerOnly := newTestVerifier(t, PolicyLivepatch, "attacker_rsa4096")

	tests := []struct {
		name   string
		module []byte
		v      *Verifier
		want   error
		// why is part of the message: each vector must fail for the defect
		// it is named after, not for an earlier one it happens to carry.
		why string
	}{
		// Tampering with each region.
		{"tampered_module_first_byte", mutate(signed, func(b []byte) []byte { b[0] ^= 1; return b }), livepatch, ErrBadSignature, "does not verify with"},
		{"tampered_module_last_byte", mutate(signed, func(b []byte) []byte { b[len(mod)-1] ^= 0x80; return b }), livepatch, ErrBadSignature, "does not verify with"},
		{"appended_module_bytes", rewrap(append(append([]byte(nil), content...), 0), der), livepatch, ErrBadSignature, "does not verify with"},
		{"tampered_signature_value", mutate(signed, func(b []byte) []byte { b[len(b)-trailerLen-1] ^= 1; return b }), livepatch, ErrBadSignature, "does not verify with"},
		{"tampered_serial", rewrap(content, bytes.Replace(der, serial, append([]byte{serial[0] ^ 1}, serial[1:]...), 1)), livepatch, ErrUnknownSigner, "sig_key 19:8A:AB"},
		{"tampered_pkcs7_outer_tag", mutate(signed, func(b []byte) []byte { b[len(mod)] = 0x31; return b }), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"tampered_trailer_magic", mutate(signed, func(b []byte) []byte { b[len(b)-2] ^= 1; return b }), livepatch, ErrUnsigned, ""},
		// The trailer's fields, as mod_check_sig checks them.
		{"id_type_x509", mutate(signed, trailerAt(2, 1)), livepatch, ErrMalformedSignature, "id_type 1 is not PKCS#7"},
		{"id_type_pgp", mutate(signed, trailerAt(2, 0)), livepatch, ErrMalformedSignature, "id_type 0 is not PKCS#7"},
		{"nonzero_algo", mutate(signed, trailerAt(0, 1)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"nonzero_hash", mutate(signed, trailerAt(1, 1)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"nonzero_signer_len", mutate(signed, trailerAt(3, 1)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"nonzero_key_id_len", mutate(signed, trailerAt(4, 1)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"nonzero_pad_0", mutate(signed, trailerAt(5, 1)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"nonzero_pad_2", mutate(signed, trailerAt(7, 0x80)), livepatch, ErrMalformedSignature, "non-zero algo"},
		{"sig_len_plus_one", mutate(signed, setSigLen(sigLen+1)), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"sig_len_minus_one", mutate(signed, setSigLen(sigLen-1)), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"sig_len_zero", mutate(signed, setSigLen(0)), livepatch, ErrMalformedSignature, "sig_len 0 outside"},
		{"sig_len_whole_file", mutate(signed, setSigLen(uint32(len(signed)-trailerLen))), livepatch, ErrMalformedSignature, "does not fit in the module"},
		{"sig_len_leaves_empty_module", rewrap(nil, der), livepatch, ErrMalformedSignature, "does not fit in the module"},
		{"sig_len_max", mutate(signed, setSigLen(0xffffffff)), livepatch, ErrMalformedSignature, "sig_len 4294967295 does not fit"},
		{"sig_len_over_bound", rewrap(make([]byte, 100), make([]byte, maxSigLen+1)), livepatch, ErrMalformedSignature, "sig_len 65537 outside"},
		// Truncation and missing parts.
		{"unsigned", mod, livepatch, ErrUnsigned, ""},
		{"empty", nil, livepatch, ErrUnsigned, ""},
		{"truncated_last_byte", signed[:len(signed)-1], livepatch, ErrUnsigned, ""},
		{"truncated_half", signed[:len(signed)/2], livepatch, ErrUnsigned, ""},
		{"magic_only", []byte(moduleSigMagic), livepatch, ErrMalformedSignature, "truncated before struct module_signature"},
		{"struct_and_magic_only", signed[len(signed)-trailerLen:], livepatch, ErrMalformedSignature, "does not fit in the module"},
		{"missing_magic", signed[:len(signed)-len(moduleSigMagic)], livepatch, ErrUnsigned, ""},
		{"truncated_pkcs7", rewrap(content, der[:len(der)-1]), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		// DER strictness and PKCS#7 shape.
		{"trailing_data_after_pkcs7", rewrap(content, append(append([]byte(nil), der...), 0)), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"ber_indefinite_length", rewrap(content, append(append([]byte{0x30, 0x80}, der[4:]...), 0, 0)), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"non_minimal_length", rewrap(content, append([]byte{0x30, 0x83, 0x00}, der[2:]...)), livepatch, ErrMalformedSignature, "not one DER SEQUENCE"},
		{"signeddata_version_2", rewrap(content, mutate(der, func(b []byte) []byte { b[25] = 2; return b })), livepatch, ErrMalformedSignature, "SignedData version is neither 1 nor 3"},
		{"keyid_in_v1_signeddata", rewrap(content, mutate(derKeyID, func(b []byte) []byte { b[25] = 1; return b })), livepatch, ErrMalformedSignature, "versions do not match"},
		{"digest_set_differs_from_signer", rewrap(content, mutate(der, func(b []byte) []byte { b[40] = 1; return b })), kernel, ErrMalformedSignature, "SignerInfo digest algorithm differs"},
		{"signed_attributes", readTestdata(t, "fail_signed_attributes.ko"), livepatch, ErrMalformedSignature, "signed attributes present"},
		{"two_signers", readTestdata(t, "fail_two_signers.ko"), livepatch, ErrMalformedSignature, "more than one SignerInfo"},
		{"attached_content", readTestdata(t, "fail_attached_content.ko"), livepatch, ErrMalformedSignature, "signature is not detached"},
		// Trust: only pinned certificates.
		{"wrong_certificate", signed, attackerOnly, ErrUnknownSigner, "sig_key 18:8A:AB"},
		{"wrong_certificate_keyid", signedKeyID, attackerOnly, ErrUnknownSigner, "sig_key D0:AE:70"},
		{"embedded_attacker_cert", readTestdata(t, "fail_embedded_attacker_cert.ko"), livepatch, ErrUnknownSigner, "sig_key 7D:B2:BD"},
		{"embedded_impostor_cert_same_issuer_serial", readTestdata(t, "fail_embedded_impostor_cert.ko"), livepatch, ErrBadSignature, "does not verify with"},
		{"embedded_impostor_cert_same_keyid", readTestdata(t, "fail_embedded_impostor_cert_keyid.ko"), livepatch, ErrBadSignature, "does not verify with"},
		// Policy.
		{"sha1", readTestdata(t, "fail_sha1.ko"), livepatch, ErrDisallowedAlgorithm, "digest sha1 under the livepatch policy"},
		{"sha1_kernel_policy", readTestdata(t, "fail_sha1.ko"), kernel, ErrDisallowedAlgorithm, "digest sha1 under the kernel policy"},
		{"short_rsa2048_key", readTestdata(t, "fail_rsa2048_sha512.ko"), livepatch, ErrDisallowedAlgorithm, "RSA-2048 key"},
		{"ecdsa_under_livepatch_policy", signWith(t, mod, "ecdsa_p384"), livepatch, ErrDisallowedAlgorithm, "ECDSA P-384 key"},
		{"sha256_under_livepatch_policy", signWith(t, mod, "vendor_rsa4096", SignWithHash(crypto.SHA256)), livepatch, ErrDisallowedAlgorithm, "digest sha256 under the livepatch policy"},
		{"unknown_digest_oid", rewrap(content, mutate(der, func(b []byte) []byte { b[40], b[164] = 9, 9; return b })), kernel, ErrDisallowedAlgorithm, "digest unknown under the kernel policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.v.VerifyModule(tt.module)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyModule = %v, %v; want %v", s, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("VerifyModule = %v; want the reason %q", err, tt.why)
			}
			if s != nil {
				t.Fatal("signer returned with an error")
			}
		})
	}
}

func signWith(t testing.TB, mod []byte, name string, opts ...Option) []byte {
	t.Helper()
	out, err := SignModule(mod, loadKey(t, name), loadCert(t, name), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyModuleGood(t *testing.T) {
	mod := testModule(t)
	tests := []struct {
		name   string
		module []byte
		policy Policy
		signer string
	}{
		{"signfile_rsa4096_sha512", readTestdata(t, "good_signfile_rsa4096_sha512.ko"), PolicyLivepatch, "vendor_rsa4096"},
		{"signfile_rsa4096_sha512_keyid", readTestdata(t, "good_signfile_rsa4096_sha512_keyid.ko"), PolicyLivepatch, "vendor_rsa4096"},
		{"signfile_rsa3072_sha512", readTestdata(t, "good_signfile_rsa3072_sha512.ko"), PolicyLivepatch, "vendor_rsa3072"},
		{"signfile_ecdsa_p256_sha256", readTestdata(t, "good_signfile_ecdsa_p256_sha256.ko"), PolicyKernel, "ecdsa_p256"},
		{"signfile_ecdsa_p384_sha384", readTestdata(t, "good_signfile_ecdsa_p384_sha384.ko"), PolicyKernel, "ecdsa_p384"},
		{"signfile_rsa2048_kernel", readTestdata(t, "fail_rsa2048_sha512.ko"), PolicyKernel, "short_rsa2048"},
		{"lpsec_rsa4096_sha512", signWith(t, mod, "vendor_rsa4096"), PolicyLivepatch, "vendor_rsa4096"},
		{"lpsec_rsa4096_keyid", signWith(t, mod, "vendor_rsa4096", SignWithKeyID()), PolicyLivepatch, "vendor_rsa4096"},
		{"lpsec_rsa4096_sha384_kernel", signWith(t, mod, "vendor_rsa4096", SignWithHash(crypto.SHA384)), PolicyKernel, "vendor_rsa4096"},
		{"lpsec_ecdsa_p256_sha256", signWith(t, mod, "ecdsa_p256", SignWithHash(crypto.SHA256)), PolicyKernel, "ecdsa_p256"},
		{"lpsec_ecdsa_p384_sha512_keyid", signWith(t, mod, "ecdsa_p384", SignWithKeyID()), PolicyKernel, "ecdsa_p384"},
	}
	// Every certificate pinned at once: the right one must be picked.
	v := func(p Policy) *Verifier {
		return newTestVerifier(t, p, "attacker_rsa4096", "vendor_rsa4096", "vendor_rsa3072", "short_rsa2048", "ecdsa_p256", "ecdsa_p384")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := v(tt.policy).VerifyModule(tt.module)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Certificate.Equal(loadCert(t, tt.signer)) {
				t.Errorf("verified by %q, want %s", s.Certificate.Subject.CommonName, tt.signer)
			}
			if !bytes.Equal(s.Signature.Content, mod) {
				t.Error("verified content is not the module")
			}
		})
	}
}

func TestSignModuleDeterministicRSA(t *testing.T) {
	// PKCS #1 v1.5 is deterministic, so sign-file's committed output is a
	// known answer for SignModule.
	mod := testModule(t)
	for _, tt := range []struct {
		vector string
		key    string
		opts   []Option
	}{
		{"good_signfile_rsa4096_sha512.ko", "vendor_rsa4096", nil},
		{"good_signfile_rsa4096_sha512_keyid.ko", "vendor_rsa4096", []Option{SignWithKeyID()}},
		{"good_signfile_rsa3072_sha512.ko", "vendor_rsa3072", nil},
	} {
		if got := signWith(t, mod, tt.key, tt.opts...); !bytes.Equal(got, readTestdata(t, tt.vector)) {
			t.Errorf("SignModule differs from sign-file's %s", tt.vector)
		}
	}
}

func TestSignModuleRefuses(t *testing.T) {
	mod := testModule(t)
	key, cert := loadKey(t, "vendor_rsa4096"), loadCert(t, "vendor_rsa4096")
	if _, err := SignModule(mod, key, cert, SignWithHash(crypto.SHA1)); !errors.Is(err, ErrDisallowedAlgorithm) {
		t.Errorf("SHA-1: %v", err)
	}
	if _, err := SignModule(mod, loadKey(t, "attacker_rsa4096"), cert); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
	if _, err := SignModule(nil, key, cert); err == nil {
		t.Error("signed an empty module")
	}
}

func TestParseModuleSignatureModinfoFields(t *testing.T) {
	s, err := ParseModuleSignature(readTestdata(t, "good_signfile_rsa4096_sha512.ko"))
	if err != nil {
		t.Fatal(err)
	}
	// What modinfo printed for this file (see peer_test.go for the live check).
	if got, want := s.SignerName(), "lpsec test live-patch signing"; got != want {
		t.Errorf("SignerName = %q, want %q", got, want)
	}
	if got, want := s.KeyID(), "18:8A:AB:9E:ED:CD:36:51:19:F6:18:74:6C:E8:61:6E:D1:FC:5A:24"; got != want {
		t.Errorf("KeyID = %q, want %q", got, want)
	}
	if s.HashName() != "sha512" || s.Hash != crypto.SHA512 || s.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("hash %q %v, key algorithm %v", s.HashName(), s.Hash, s.PublicKeyAlgorithm)
	}
	k, err := ParseModuleSignature(readTestdata(t, "good_signfile_rsa4096_sha512_keyid.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if k.SerialNumber != nil || k.SignerName() != "" || k.KeyID() != "D0:AE:70:75:AE:5C:71:3F:BF:0E:03:ED:94:52:34:C0:67:AD:AB:7D" {
		t.Errorf("keyid signature: serial %v, signer %q, key %q", k.SerialNumber, k.SignerName(), k.KeyID())
	}
}

// selfSigned makes a certificate for key valid from notBefore to notAfter,
// reusing a test key (no key generation).
func selfSigned(t testing.TB, key crypto.Signer, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2016),
		Subject:      x509Name(cn),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidityDates(t *testing.T) {
	// Like a vendor's 2016 live-patch certificate that expired in July 2026:
	// modules it signed stay valid unless the caller asks for dates.
	key := loadKey(t, "vendor_rsa4096")
	cert := selfSigned(t, key, "expired vendor", time.Date(2016, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	signed, err := SignModule(testModule(t), key, cert)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier([]*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyModule(signed); err != nil {
		t.Errorf("expired certificate without WithValidityAt: %v", err)
	}
	for _, tt := range []struct {
		at   time.Time
		want error
	}{
		{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		{time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), ErrCertificateNotValid},
		{time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), ErrCertificateNotValid},
	} {
		v, err := NewVerifier([]*x509.Certificate{cert}, WithValidityAt(tt.at))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyModule(signed); !errors.Is(err, tt.want) {
			t.Errorf("at %v: %v, want %v", tt.at, err, tt.want)
		}
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	vendor := loadCert(t, "vendor_rsa4096")
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sameSKID := selfSigned(t, ecKey, "a", time.Now(), time.Now().Add(time.Hour))
	sameSKID2 := selfSigned(t, ecKey, "b", time.Now(), time.Now().Add(time.Hour))
	for name, certs := range map[string][]*x509.Certificate{
		"none":                    nil,
		"nil_certificate":         {nil},
		"duplicate_issuer_serial": {vendor, vendor},
		"duplicate_keyid":         {sameSKID, sameSKID2},
	} {
		if _, err := NewVerifier(certs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewVerifier([]*x509.Certificate{vendor}, WithPolicy(Policy(7))); err == nil || !strings.Contains(err.Error(), "Policy(7)") {
		t.Errorf("unknown policy: %v", err)
	}
}
