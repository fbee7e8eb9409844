package integration

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/oidcop"
)

// TestAdminCLI (issue 18): the admin tool logs in by single sign-on
// through the OAuth 2.0 device authorization grant at a real OpenID
// provider (zitadel's example OP: the tool prints the code, the user
// approves it on the provider's device page, the tool polls, gets the ID
// token and exchanges it for the server's macaroon), keeps the macaroon in
// a 0600 file and runs admin operations with it; then Basic login with a
// password file, and logout.
func TestAdminCLI(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	p := oidcop.Start(t)
	dir := t.TempDir()
	idpCA := filepath.Join(dir, "idp-ca.pem")
	if err := os.WriteFile(idpCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", append(serverArgs(f, filepath.Join(dir, "srv")),
		"--oidc-issuer", p.Issuer, "--oidc-client-id", oidcop.DeviceClientID,
		"--oidc-admin-claim", oidcop.GroupsClaim+"="+oidcop.AdminGroup, "--oidc-ca-certs", idpCA)...)
	ca := s.line(t, `CA in (\S+) \(`)
	sessionFile := filepath.Join(dir, "cfg", "session.json")
	env := []string{"LPSEC_ADMIN_SESSION_FILE=" + sessionFile, "LPSEC_ADMIN_OIDC_CLIENT_SECRET=" + oidcop.DeviceSecret}

	// Device flow: read the code from stderr, approve it at the provider.
	cmd := exec.Command(exe(t, "admin"), "login", "--server", s.URL, "--ca-certs", ca, "--sso",
		"--oidc-issuer", p.Issuer, "--oidc-client-id", oidcop.DeviceClientID, "--oidc-ca-certs", idpCA)
	cmd.Env = append(cleanEnv(), env...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	codeRe := regexp.MustCompile(`enter the code "([^"]+)"`)
	sc := bufio.NewScanner(stderr)
	var userCode, errText string
	for userCode == "" && sc.Scan() {
		errText += sc.Text() + "\n"
		if m := codeRe.FindStringSubmatch(sc.Text()); m != nil {
			userCode = m[1]
		}
	}
	if userCode == "" {
		cmd.Wait()
		t.Fatalf("admin login --sso printed no user code:\n%s", errText)
	}
	p.ApproveDevice(t, userCode, oidcop.AdminSubject)
	for sc.Scan() {
		errText += sc.Text() + "\n"
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("admin login --sso: %v\n%s", err, errText)
	}
	if want := "logged in as " + p.Issuer + "#" + oidcop.AdminSubject; !strings.Contains(stdout.String(), want) {
		t.Fatalf("login output %q, want %q", stdout.String(), want)
	}
	st, err := os.Stat(sessionFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, mode %v, want 0600", err, st.Mode().Perm())
	}

	// Admin operations with the kept macaroon (server and CA come from
	// the session file).
	out := mustRun(t, env, "admin", "tokens", "create", "--name", "from-cli", "--uses", "2")
	var issued struct{ Token string }
	if err := json.Unmarshal([]byte(out), &issued); err != nil || issued.Token == "" {
		t.Fatalf("tokens create: %q (%v)", out, err)
	}
	if out := mustRun(t, env, "admin", "tokens", "list"); !strings.Contains(out, "from-cli") || strings.Contains(out, issued.Token) {
		t.Errorf("tokens list (must name the token, never show its value): %s", out)
	}
	mustRun(t, env, "admin", "machines")
	mustRun(t, env, "admin", "patches")
	mustRun(t, env, "admin", "patches", "upload", f.tarball)
	if out := mustRun(t, env, "admin", "patches"); !strings.Contains(out, filepath.Base(f.tarball)) {
		t.Errorf("patches after upload: %s", out)
	}

	// A session file others can read is refused, not used.
	os.Chmod(sessionFile, 0o644)
	if r := run(t, env, "admin", "tokens", "list"); r.code != 1 || !strings.Contains(r.stderr, "readable by others") {
		t.Errorf("world-readable session file: exit %d, %q", r.code, r.stderr)
	}
	os.Chmod(sessionFile, 0o600)

	// Logout ends the macaroon at the server: a copy kept aside is refused.
	kept, _ := os.ReadFile(sessionFile)
	mustRun(t, env, "admin", "logout")
	if _, err := os.Stat(sessionFile); !os.IsNotExist(err) {
		t.Errorf("session file after logout: %v", err)
	}
	os.WriteFile(sessionFile, kept, 0o600)
	if r := run(t, env, "admin", "tokens", "list"); r.code != 1 || !strings.Contains(r.stderr, "revoked") {
		t.Errorf("macaroon after logout: exit %d, %q", r.code, r.stderr)
	}

	// Basic login, the password from a file; usage errors exit 2.
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(f.password+"\n"), 0o600)
	if out := mustRun(t, env, "admin", "login", "--server", s.URL, "--ca-certs", ca, "--user", "alice", "--password-file", pwFile); !strings.Contains(out, "logged in as alice") {
		t.Errorf("Basic login: %q", out)
	}
	mustRun(t, env, "admin", "reports")
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	if r := run(t, env, "admin", "login", "--server", s.URL, "--ca-certs", ca, "--user", "alice", "--password-file", pwFile); r.code != 1 {
		t.Errorf("wrong password: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, env, "admin", "login", "--server", s.URL, "--user", "alice", "--sso"); r.code != 2 {
		t.Errorf("--user and --sso: exit %d, %q", r.code, r.stderr)
	}
}
