package patchverify

import (
	"bytes"
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/testenv"
)

const signFilePath = "/usr/lib/linux-kbuild-6.1/scripts/sign-file"

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The byte-identical peer: openssl cms with sign-file's flags, plus the trailer.
func TestSignModuleEqualsOpenSSL(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	modPath := filepath.Join("testdata", "good_module_unsigned.ko")
	for _, tt := range []struct {
		name, key, md string
		hash          crypto.Hash
		keyID         bool
	}{
		{"rsa4096_sha512", "vendor_rsa4096", "sha512", crypto.SHA512, false},
		{"rsa4096_sha512_keyid", "vendor_rsa4096", "sha512", crypto.SHA512, true},
		{"rsa3072_sha512", "vendor_rsa3072", "sha512", crypto.SHA512, false},
		{"rsa2048_sha256", "short_rsa2048", "sha256", crypto.SHA256, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"cms", "-sign", "-binary", "-noattr", "-nocerts", "-nosmimecap", "-md", tt.md, "-outform", "DER",
				"-signer", filepath.Join("testdata", tt.key+".crt"), "-inkey", filepath.Join("testdata", tt.key+".key"), "-in", modPath}
			opts := []Option{SignWithHash(tt.hash)}
			if tt.keyID {
				args = append(args, "-keyid")
				opts = append(opts, SignWithKeyID())
			}
			der := run(t, openssl, args...)
			want := rewrap(testModule(t), der)
			if got := signWith(t, testModule(t), tt.key, opts...); !bytes.Equal(got, want) {
				t.Errorf("SignModule differs from openssl cms (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

func TestOpenSSLVerifiesSignModule(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	mod := testModule(t)
	modPath := writeTemp(t, "module.ko", mod)
	for _, tt := range []struct {
		name, key string
		opts      []Option
	}{
		{"rsa4096_sha512", "vendor_rsa4096", nil},
		{"rsa4096_sha512_keyid", "vendor_rsa4096", []Option{SignWithKeyID()}},
		{"ecdsa_p256_sha256", "ecdsa_p256", []Option{SignWithHash(crypto.SHA256)}},
		{"ecdsa_p384_sha384_keyid", "ecdsa_p384", []Option{SignWithHash(crypto.SHA384), SignWithKeyID()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, der := split(t, signWith(t, mod, tt.key, tt.opts...))
			sigPath := writeTemp(t, "sig.der", der)
			run(t, openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath, "-content", modPath,
				"-certfile", filepath.Join("testdata", tt.key+".crt"), "-noverify", "-out", os.DevNull)
			// And openssl refuses it for other content: the check is real.
			bad := append(append([]byte(nil), mod...), 0)
			cmd := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
				"-content", writeTemp(t, "bad.ko", bad), "-certfile", filepath.Join("testdata", tt.key+".crt"), "-noverify", "-out", os.DevNull)
			if cmd.Run() == nil {
				t.Error("openssl verified the signature over other content")
			}
		})
	}
}

// The kernel's own signer, run live (the committed good_signfile_* vectors
// are its earlier output).
func TestSignFileOutputVerifies(t *testing.T) {
	signFile := testenv.LookPath(t, signFilePath, "linux-kbuild-6.1")
	mod := testModule(t)
	for _, tt := range []struct {
		name, hash, key string
		keyID           bool
		policy          Policy
	}{
		{"rsa4096_sha512", "sha512", "vendor_rsa4096", false, PolicyLivepatch},
		{"rsa4096_sha512_keyid", "sha512", "vendor_rsa4096", true, PolicyLivepatch},
		{"rsa3072_sha512_keyid", "sha512", "vendor_rsa3072", true, PolicyLivepatch},
		{"ecdsa_p384_sha384", "sha384", "ecdsa_p384", false, PolicyKernel},
		{"ecdsa_p256_sha256_keyid", "sha256", "ecdsa_p256", true, PolicyKernel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := writeTemp(t, "module.ko", mod)
			out := filepath.Join(t.TempDir(), "signed.ko")
			args := []string{tt.hash, filepath.Join("testdata", tt.key+".key"), filepath.Join("testdata", tt.key+".crt"), in, out}
			if tt.keyID {
				args = append([]string{"-k"}, args...)
			}
			run(t, signFile, args...)
			signed, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			v := newTestVerifier(t, tt.policy, "attacker_rsa4096", "vendor_rsa4096", "vendor_rsa3072", "ecdsa_p256", "ecdsa_p384")
			s, err := v.VerifyModule(signed)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Certificate.Equal(loadCert(t, tt.key)) {
				t.Errorf("verified by %q", s.Certificate.Subject.CommonName)
			}
			if strings.HasPrefix(tt.key, "vendor_rsa") {
				opts := []Option{}
				if tt.keyID {
					opts = append(opts, SignWithKeyID())
				}
				if !bytes.Equal(signWith(t, mod, tt.key, opts...), signed) {
					t.Error("SignModule output differs from sign-file's")
				}
			}
		})
	}
}

// modinfo(8) reads the signature fields patchtool inspect prints.
func TestModinfoAgrees(t *testing.T) {
	modinfo := testenv.LookPath(t, "modinfo", "kmod")
	mod := testModule(t)
	for _, tt := range []struct {
		key  string
		opts []Option
	}{
		{"vendor_rsa4096", nil},
		{"vendor_rsa3072", nil},
		{"short_rsa2048", []Option{SignWithHash(crypto.SHA256)}},
		{"ecdsa_p384", []Option{SignWithHash(crypto.SHA384)}},
	} {
		t.Run(tt.key, func(t *testing.T) {
			signed := signWith(t, mod, tt.key, tt.opts...)
			path := writeTemp(t, "module.ko", signed)
			s, err := ParseModuleSignature(signed)
			if err != nil {
				t.Fatal(err)
			}
			for field, want := range map[string]string{
				"signer":       s.SignerName(),
				"sig_key":      s.KeyID(),
				"sig_hashalgo": s.HashName(),
			} {
				got := strings.TrimSpace(string(run(t, modinfo, "-F", field, path)))
				if got != want {
					t.Errorf("modinfo %s = %q, lpsec says %q", field, got, want)
				}
			}
		})
	}
}
