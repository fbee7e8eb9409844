package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/internal/testenv"
)

func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"server", "client", "contracts", "identity", "patchtool", "admin"} {
		r := run(t, nil, name, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "usage:") {
			t.Errorf("%s -h: exit %d, stdout %q", name, r.code, r.stdout)
		}
		if name == "server" || name == "contracts" || name == "identity" {
			if !strings.Contains(r.stdout, "$LPSEC_"+strings.ToUpper(name)+"_LISTEN") {
				t.Errorf("%s -h does not name the environment variables", name)
			}
		}
		if r := run(t, nil, name, "--no-such-flag"); r.code != 2 || !strings.Contains(r.stderr, "no-such-flag") {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
	// The identity service refuses weak or missing secrets, without echoing them.
	for _, args := range [][]string{{"--users", "alice=short-secret"}, {"--users", "=0123456789abcdef-x"}, {}} {
		r := run(t, nil, "identity", append([]string{"--listen", "127.0.0.1:0", "--state-dir", t.TempDir()}, args...)...)
		if r.code != 2 || strings.Contains(r.stderr, "short-secret") || strings.Contains(r.stderr, "0123456789abcdef") {
			t.Errorf("identity %q: exit %d, stderr %q; want 2 without the secret", args, r.code, r.stderr)
		}
	}
	for _, sub := range []string{"enable", "status", "refresh", "report", "machine-id"} {
		if r := run(t, nil, "client", sub, "-h"); r.code != 0 || !strings.Contains(r.stdout, "LPSEC_") && sub != "machine-id" {
			t.Errorf("client %s -h: exit %d %q", sub, r.code, r.stdout)
		}
	}
	for _, sub := range []string{"login", "logout", "tokens", "machines", "patches", "reports", "sync"} {
		if r := run(t, nil, "admin", sub, "-h"); r.code != 0 || !strings.Contains(r.stdout, "LPSEC_ADMIN_SESSION_FILE") {
			t.Errorf("admin %s -h: exit %d %q", sub, r.code, r.stdout)
		}
	}
	if r := run(t, nil, "client", "bogus"); r.code != 2 {
		t.Errorf("client bogus: exit %d", r.code)
	}
}

func TestServerRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	dir := t.TempDir()
	base := []string{"--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "s")}
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"no signing cert", nil, base, []string{"--signing-cert is required"}},
		{"SHA-1 htpasswd hash", nil, append(base, "--signing-cert", f.cert, "--admin-users", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="), []string{"--admin-users", "alice"}},
		{"plaintext password", nil, append(base, "--signing-cert", f.cert, "--admin-users", "alice:hunter2hunter2"), []string{"--admin-users", "alice"}},
		{"bad env duration", []string{"LPSEC_SERVER_SYNC_INTERVAL=soon"}, append(base, "--signing-cert", f.cert), []string{"$LPSEC_SERVER_SYNC_INTERVAL", `"soon"`, "want a Go duration"}},
		{"database without KEK", []string{"LPSEC_SERVER_DATABASE_URL=postgres://127.0.0.1:1/x?connect_timeout=1"}, append(base, "--signing-cert", f.cert), []string{"--database-url"}},
		{"OIDC issuer without client", nil, append(base, "--signing-cert", f.cert, "--oidc-issuer", "https://127.0.0.1:1"), []string{"--oidc-issuer, --oidc-client-id and --oidc-admin-claim go together"}},
		{"OIDC admin claim without value", nil, append(base, "--signing-cert", f.cert, "--oidc-issuer", "https://127.0.0.1:1", "--oidc-client-id", "c", "--oidc-admin-claim", "groups"), []string{"CLAIM=VALUE"}},
		{"http OIDC issuer", nil, append(base, "--signing-cert", f.cert, "--oidc-issuer", "http://127.0.0.1:1", "--oidc-client-id", "c", "--oidc-admin-claim", "groups=x"), []string{"--oidc-issuer", "not an https URL"}},
		{"zero database timeout", nil, append(base, "--signing-cert", f.cert, "--database-timeout", "0s"), []string{"--database-timeout must be positive"}},
		{"token cache TTL too long", nil, append(base, "--signing-cert", f.cert, "--token-cache-ttl", "2m"), []string{"--token-cache-ttl 2m0s: want 0 (off) up to 1m0s"}},
		{"negative token cache TTL", nil, append(base, "--signing-cert", f.cert, "--token-cache-ttl", "-1s"), []string{"--token-cache-ttl -1s: want 0 (off) up to 1m0s"}},
		{"token cache without database", nil, append(base, "--signing-cert", f.cert, "--token-cache-ttl", "1s"), []string{"--token-cache-ttl needs --database-url"}},
		{"revocation cache TTL too long", nil, append(base, "--signing-cert", f.cert, "--revocation-cache-ttl", "2m"), []string{"--revocation-cache-ttl 2m0s: want 0 (off) up to 1m0s"}},
		{"negative revocation cache TTL", nil, append(base, "--signing-cert", f.cert, "--revocation-cache-ttl", "-1s"), []string{"--revocation-cache-ttl -1s: want 0 (off) up to 1m0s"}},
		{"revocation cache without database", nil, append(base, "--signing-cert", f.cert, "--revocation-cache-ttl", "1s"), []string{"--revocation-cache-ttl needs --database-url"}},
		{"zero log repeat interval", []string{"LPSEC_SERVER_LOG_REPEAT_INTERVAL=0s"}, append(base, "--signing-cert", f.cert), []string{"--log-repeat-interval must be positive"}},
		{"http contracts URL", nil, append(base, "--signing-cert", f.cert, "--contracts-url", "http://127.0.0.1:1", "--contracts-public-key", "x"), []string{"--contracts"}},
		{"http identity URL", nil, append(base, "--signing-cert", f.cert, "--identity-url", "http://127.0.0.1:1", "--identity-public-key", "x"), []string{"--identity-url must be an https URL"}},
		{"identity URL without key", nil, append(base, "--signing-cert", f.cert, "--identity-url", "https://127.0.0.1:1"), []string{"--identity-url and --identity-public-key go together"}},
		{"bad identity key", nil, append(base, "--signing-cert", f.cert, "--identity-url", "https://127.0.0.1:1", "--identity-public-key", "x"), []string{"--identity-public-key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, "server", tc.args...)
			if r.code == 0 {
				t.Fatalf("server started with a bad configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stderr, "hunter2") || strings.Contains(r.stderr, "W6ph5Mm5") {
				t.Errorf("the error echoes the password or hash: %q", r.stderr)
			}
		})
	}
	// htpasswd's own MD5 (apr1) hashes are refused naming the format.
	if hp, err := exec.LookPath("htpasswd"); err == nil {
		out, err := exec.Command(hp, "-nbm", "alice", "pw").Output()
		if err != nil {
			t.Fatal(err)
		}
		r := run(t, nil, "server", append(base, "--signing-cert", f.cert, "--admin-users", strings.TrimSpace(string(out)))...)
		if r.code != 2 || !strings.Contains(r.stderr, "alice") {
			t.Errorf("apr1 hash: exit %d, %q", r.code, r.stderr)
		}
	}
}

func TestPatchtool(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	dir := t.TempDir()

	out := mustRun(t, nil, "patchtool", "verify", "--cert", f.cert, f.module)
	if !strings.Contains(out, "signature valid") || !strings.Contains(out, "sig_hashalgo: sha512") {
		t.Errorf("verify: %q", out)
	}
	// Tampered content: exit 1 and the reason.
	data, err := os.ReadFile(f.module)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[100] ^= 1
	badFile := filepath.Join(dir, "bad.ko")
	if err := os.WriteFile(badFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, "patchtool", "verify", "--cert", f.cert, badFile); r.code != 1 || !strings.Contains(r.stderr, "bad module signature") {
		t.Errorf("tampered: exit %d, %q", r.code, r.stderr)
	}
	// Unsigned: exit 1. Missing file or certificate: exit 2.
	if r := run(t, nil, "patchtool", "verify", "--cert", f.cert, filepath.Join("testdata", "good_module_unsigned.ko")); r.code != 1 || !strings.Contains(r.stderr, "not signed") {
		t.Errorf("unsigned: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, nil, "patchtool", "verify", "--cert", f.cert, filepath.Join(dir, "missing.ko")); r.code != 2 {
		t.Errorf("missing module: exit %d", r.code)
	}
	if r := run(t, nil, "patchtool", "verify", "--cert", filepath.Join(dir, "missing.pem"), f.module); r.code != 2 {
		t.Errorf("missing cert: exit %d", r.code)
	}
	if r := run(t, nil, "patchtool", "verify", f.module); r.code != 2 {
		t.Errorf("no --cert: exit %d", r.code)
	}
	// The kernel policy accepts SHA-256; the live-patch policy does not.
	sha256ko := filepath.Join(dir, "sha256.ko")
	mustRun(t, nil, "patchtool", "sign", "--key", f.key, "--cert", f.cert, "--hash", "sha256", "--keyid", filepath.Join("testdata", "good_module_unsigned.ko"), "-o", sha256ko)
	if r := run(t, nil, "patchtool", "verify", "--cert", f.cert, sha256ko); r.code != 1 || !strings.Contains(r.stderr, "not allowed") {
		t.Errorf("sha256 under livepatch policy: exit %d, %q", r.code, r.stderr)
	}
	mustRun(t, nil, "patchtool", "verify", "--cert", f.cert, "--policy", "kernel", sha256ko)

	// package refuses metadata that disagrees with the signed module: the
	// test module says vermagic 6.1.0 and name lpsec_test.
	wrong := filepath.Join(dir, "lpsec_test.ko")
	mustRun(t, nil, "patchtool", "sign", "--key", f.key, "--cert", f.cert, filepath.Join("testdata", "good_module_unsigned.ko"), "-o", wrong)
	out2 := filepath.Join(dir, "wrong.tar.gz")
	if r := run(t, nil, "patchtool", "package", "--kernel", "5.4.0", "--flavour", "", "--version", "99", wrong, "-o", out2); r.code == 0 || !strings.Contains(r.stderr, `metadata is for kernel "5.4.0", the module's vermagic for "6.1.0"`) {
		t.Errorf("package with the wrong kernel: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("package left %s behind: %v", out2, err)
	}
	mustRun(t, nil, "patchtool", "package", "--kernel", "6.1.0", "--flavour", "", "--version", "99", wrong, "-o", out2)

	sum := strings.Fields(mustRun(t, nil, "patchtool", "checksum", f.tarball))[0]
	if len(sum) != 64 {
		t.Fatalf("checksum: %q", sum)
	}
	mustRun(t, nil, "patchtool", "checksum", "--expect", strings.ToUpper(sum), f.tarball)
	other := strings.Repeat("0", 64)
	if r := run(t, nil, "patchtool", "checksum", "--expect", other, f.tarball); r.code != 1 || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("wrong --expect: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, nil, "patchtool", "checksum", "--expect", "abc", f.tarball); r.code != 1 {
		t.Errorf("malformed --expect: exit %d, %q", r.code, r.stderr)
	}
}

func inspect(t *testing.T, mod string) map[string]string {
	t.Helper()
	out := mustRun(t, nil, "patchtool", "inspect", mod)
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got
}

// TestPatchtoolInspectMatchesModinfo compares patchtool inspect with
// kmod's modinfo on the same module (signer named by issuer and serial,
// sign-file's default). For a signer named by subject key identifier
// (sign-file -k) kmod prints no signature fields at all; inspect then
// prints the identifier as sig_key, checked against the certificate.
func TestPatchtoolInspectMatchesModinfo(t *testing.T) {
	t.Parallel()
	modinfo := testenv.LookPath(t, "modinfo", "kmod")
	f := getFixtures(t)
	keyid := filepath.Join(t.TempDir(), "keyid.ko")
	mustRun(t, nil, "patchtool", "sign", "--key", f.key, "--cert", f.cert, "--keyid", filepath.Join("testdata", "good_module_unsigned.ko"), "-o", keyid)
	certs, err := pki.ReadCerts(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	var skid []string
	for _, b := range certs[0].SubjectKeyId {
		skid = append(skid, fmt.Sprintf("%02X", b))
	}
	if got := inspect(t, keyid)["sig_key"]; got != strings.Join(skid, ":") {
		t.Errorf("keyid module: sig_key %q, certificate's subject key identifier %q", got, strings.Join(skid, ":"))
	}
	for _, mod := range []string{f.module} {
		got := inspect(t, mod)
		for _, field := range []string{"signer", "sig_key", "sig_hashalgo"} {
			want, err := exec.Command(modinfo, "-F", field, mod).Output()
			if err != nil {
				t.Fatalf("modinfo -F %s %s: %v", field, mod, err)
			}
			if got[field] != strings.TrimSpace(string(want)) {
				t.Errorf("%s: patchtool inspect says %s %q, modinfo %q", filepath.Base(mod), field, got[field], strings.TrimSpace(string(want)))
			}
		}
	}
}

// TestPatchtoolVerifiesSignFile checks modules signed by the kernel's own
// scripts/sign-file, and a .ko.xz of one.
func TestPatchtoolVerifiesSignFile(t *testing.T) {
	t.Parallel()
	signFile := testenv.LookPath(t, "/usr/lib/linux-kbuild-6.1/scripts/sign-file", "linux-kbuild-6.1")
	f := getFixtures(t)
	dir := t.TempDir()
	for _, extra := range [][]string{nil, {"-k"}} {
		mod := filepath.Join(dir, "m.ko")
		raw, _ := os.ReadFile(filepath.Join("testdata", "good_module_unsigned.ko"))
		if err := os.WriteFile(mod, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{}, extra...), "sha512", f.key, f.cert, mod)
		if out, err := exec.Command(signFile, args...).CombinedOutput(); err != nil {
			t.Fatalf("sign-file %v: %v\n%s", args, err, out)
		}
		mustRun(t, nil, "patchtool", "verify", "--cert", f.cert, mod)
		// Compressed modules, as distributions ship them.
		for _, c := range []struct{ prog, pkg, ext string }{{"xz", "xz-utils", ".xz"}, {"zstd", "zstd", ".zst"}} {
			prog := testenv.LookPath(t, c.prog, c.pkg)
			if out, err := exec.Command(prog, "-q", "-k", "-f", mod).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v %s", c.prog, err, out)
			}
			mustRun(t, nil, "patchtool", "verify", "--cert", f.cert, mod+c.ext)
		}
	}
}

// TestMachineIDMatchesSystemd compares the client's app-specific machine
// ID with systemd-id128 on this machine.
func TestMachineIDMatchesSystemd(t *testing.T) {
	t.Parallel()
	sd := testenv.LookPath(t, "systemd-id128", "systemd")
	if _, err := os.Stat("/etc/machine-id"); err != nil {
		t.Skip("skipped: no /etc/machine-id on this machine")
	}
	for _, app := range []string{"7c2a3e4b5d6f41a8b9c0d1e2f3a4b5c6", "e2d4a0e5-1c6b-4c1f-9d7e-3b2a1f0e9d8c"} {
		want, err := exec.Command(sd, "machine-id", "--app-specific="+app).Output()
		if err != nil {
			t.Fatalf("systemd-id128: %v", err)
		}
		got := mustRun(t, nil, "client", "machine-id", "--app-specific", app)
		if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("app %s: client says %q, systemd-id128 %q", app, got, want)
		}
	}
}
