package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/patchverify"
)

const (
	kernel        = "6.1.0-18"
	flavour       = "amd64"
	machineKernel = kernel + "-" + flavour
)

// fixtures are made once per test binary: an RSA-4096 signing key costs a
// second or two.
type fixtures struct {
	dir                string
	cert, key          string
	module             string // signed
	tarball            string
	password, userSpec string
}

var (
	fixOnce sync.Once
	fix     *fixtures
	fixErr  string
)

func getFixtures(t *testing.T) *fixtures {
	t.Helper()
	exe(t, "patchtool")
	fixOnce.Do(func() {
		dir := filepath.Join(bin, "fixtures")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fixErr = err.Error()
			return
		}
		f := &fixtures{dir: dir, cert: filepath.Join(dir, "signing-cert.pem"), key: filepath.Join(dir, "signing-key.pem")}
		step := func(name string, args ...string) string {
			out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
			if err != nil && fixErr == "" {
				fixErr = name + " " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out)
			}
			return strings.TrimSpace(string(out))
		}
		step("patchtool", "keygen", "--key", f.key, "--cert", f.cert)
		// A module whose .modinfo says what the package step's metadata
		// will: name livepatch_demo, built for the test kernel.
		raw := kmodtest.Module("license=GPL", "livepatch=Y", "name=livepatch_demo", "vermagic="+machineKernel+" SMP preempt mod_unload ")
		f.module = filepath.Join(dir, "livepatch_demo.ko")
		if err := os.WriteFile(f.module, raw, 0o644); err != nil {
			fixErr = err.Error()
			return
		}
		step("patchtool", "sign", "--key", f.key, "--cert", f.cert, f.module)
		args := []string{"package", "--kernel", kernel, "--flavour", flavour, "--version", "1", f.module, "-o"}
		if _, err := exec.LookPath("bzip2"); err == nil {
			f.tarball = filepath.Join(dir, "livepatch-"+machineKernel+"-1-x86_64.tar.bz2")
			args = append(args, f.tarball, "--bzip2")
		} else {
			f.tarball = filepath.Join(dir, "livepatch-"+machineKernel+"-1-x86_64.tar.gz")
			args = append(args, f.tarball)
		}
		step("patchtool", args...)
		f.password = randHex(10)
		// The real htpasswd makes the hash when it is installed.
		var hash string
		if hp, err := exec.LookPath("htpasswd"); err == nil {
			out, err := exec.Command(hp, "-nbBC", "10", "alice", f.password).Output()
			if err == nil {
				hash = strings.TrimPrefix(strings.TrimSpace(string(out)), "alice:")
			}
		}
		if hash == "" {
			var err error
			if hash, err = auth.HashPassword(f.password, auth.HashBcrypt(10)); err != nil {
				fixErr = err.Error()
				return
			}
		}
		f.userSpec = "alice:" + hash
		fix = f
	})
	if fixErr != "" {
		t.Fatalf("fixtures: %s", fixErr)
	}
	return fix
}

// deployment is one story's processes.
type deployment struct {
	dir       string
	contracts *daemon
	contractT string
	a         *daemon
	caBundle  string
	reportKey string
	kek       string
	db        string
}

func serverArgs(f *fixtures, state string) []string {
	return []string{"--listen", "127.0.0.1:0", "--state-dir", state, "--signing-cert", f.cert}
}

// serverEnv passes some settings through LPSEC_SERVER_* variables, which is
// part of the command-line contract.
func (d *deployment) serverEnv(f *fixtures) []string {
	env := []string{"LPSEC_SERVER_REPORT_KEY=" + d.reportKey, "LPSEC_SERVER_LOG_LEVEL=info"}
	if d.db != "" {
		env = append(env, "LPSEC_SERVER_ADMIN_USERS="+f.userSpec, "LPSEC_SERVER_DATABASE_URL="+d.db, "LPSEC_SERVER_ROOT_KEY_KEK="+d.kek)
	} else {
		// The in-memory story reads the users from an htpasswd file.
		file := filepath.Join(d.dir, "admins.htpasswd")
		if err := os.WriteFile(file, []byte("# admins\n\n"+f.userSpec+"\n"), 0o600); err != nil {
			panic(err)
		}
		env = append(env, "LPSEC_SERVER_ADMIN_USERS_FILE="+file)
	}
	return env
}

func (d *deployment) clientArgs(cmd, name, server string, extra ...string) []string {
	args := []string{cmd, "--remote-server", server, "--ca-certs", d.caBundle,
		"--state-dir", filepath.Join(d.dir, name), "--machine-id-file", filepath.Join(d.dir, name+"-machine-id"),
		"--kernel", machineKernel}
	return append(args, extra...)
}

func TestStoryMemory(t *testing.T) {
	t.Parallel()
	runStory(t, "")
}

func TestStoryPostgres(t *testing.T) {
	t.Parallel()
	runStory(t, pgtest.Database(t))
}

func runStory(t *testing.T, db string) {
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	d := &deployment{dir: t.TempDir(), contractT: "contract-" + randHex(12), reportKey: "k1:" + randHex(32), kek: randB64(32), db: db}
	for _, m := range []string{"client-1", "client-2"} {
		if err := os.WriteFile(filepath.Join(d.dir, m+"-machine-id"), []byte(randHex(16)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tokensFile := filepath.Join(d.dir, "contract-tokens")
	if err := os.WriteFile(tokensFile, []byte("# valid contracts\ncontract-other-"+randHex(8)+"\n"+d.contractT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.contracts = start(t, nil, "contracts", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(d.dir, "contracts"),
		"--contract-tokens-file", tokensFile)
	pub := d.contracts.line(t, `public key (\S+) `)
	contractsCA := d.contracts.line(t, `CA in (\S+)`)

	args := append(serverArgs(f, filepath.Join(d.dir, "server-a")), "--contracts-url", d.contracts.URL, "--contracts-public-key", pub)
	d.a = start(t, d.serverEnv(f), "server", args...)
	serverCA := d.a.line(t, `CA in (\S+) \(`)
	d.caBundle = bundle(t, d.dir, serverCA, contractsCA)

	admin, err := client.NewAdmin(d.a.URL, d.caBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	reg, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "fleet", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, nil, "client", d.clientArgs("enable", "client-1", d.a.URL, reg.Token)...)
	if !strings.Contains(out, "enabled: machine") {
		t.Fatalf("enable: %q", out)
	}
	// The spent token is refused.
	if r := run(t, nil, "client", d.clientArgs("enable", "client-2", d.a.URL, reg.Token)...); r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("second use of a one-use token: exit %d, %s", r.code, r.stderr)
	}
	// Client 2 is entitled through the contracts service instead.
	mustRun(t, nil, "client", d.clientArgs("enable", "client-2", d.a.URL, "--contract", "--contracts-url", d.contracts.URL, d.contractT)...)
	if r := run(t, nil, "client", d.clientArgs("enable", "client-2", d.a.URL, "--contract", "--contracts-url", d.contracts.URL, "contract-wrong-"+randHex(4))...); r.code != 1 {
		t.Fatalf("unknown contract token: exit %d", r.code)
	}

	tarball, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Upload(ctx, tarball)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if up.Filename != filepath.Base(f.tarball) {
		t.Errorf("server named the patch %q, want %q", up.Filename, filepath.Base(f.tarball))
	}
	// One rule for server and client: a tarball every client would fail to
	// extract (the module good.ko.gz lands on good.ko, a file sits under
	// good.ko/) is refused at upload, and nothing is listed.
	var listBefore, listAfter json.RawMessage
	if err := admin.Do(ctx, http.MethodGet, "/v1/admin/patches", nil, nil, &listBefore); err != nil {
		t.Fatal(err)
	}
	signedMod, err := os.ReadFile(f.module)
	if err != nil {
		t.Fatal(err)
	}
	var gzMod bytes.Buffer
	zw := gzip.NewWriter(&gzMod)
	zw.Write(signedMod)
	zw.Close()
	ambiguous := tarGz(t, tarEntry{"metadata.json", []byte(`{"kernel":"` + kernel + `","flavour":"` + flavour + `","version":7,"module":"livepatch_demo.ko"}`)},
		tarEntry{"livepatch_demo.ko.gz", gzMod.Bytes()}, tarEntry{"livepatch_demo.ko/zz", []byte("x")})
	var se *client.ServerError
	if _, err := admin.Upload(ctx, ambiguous); !asServerError(err, &se) || se.Status != http.StatusUnprocessableEntity || !strings.Contains(se.Message, `"livepatch_demo.ko/zz" and the module "livepatch_demo.ko.gz" extract to the same path`) {
		t.Fatalf("ambiguous upload: %v", err)
	}
	if err := admin.Do(ctx, http.MethodGet, "/v1/admin/patches", nil, nil, &listAfter); err != nil || !bytes.Equal(listAfter, listBefore) {
		t.Fatalf("listing changed after a refused upload: %v\n%s\n%s", err, listBefore, listAfter)
	}

	out = mustRun(t, nil, "client", d.clientArgs("refresh", "client-1", d.a.URL, "--signing-cert", f.cert, "--tls-patch-download")...)
	if !strings.Contains(out, "verified "+up.Filename) {
		t.Fatalf("refresh: %q", out)
	}
	// The placed module is exactly the signed module.
	want, _ := os.ReadFile(f.module)
	var placed string
	_ = filepath.WalkDir(filepath.Join(d.dir, "client-1", "patches"), func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			placed = p
		}
		return nil
	})
	if got, err := os.ReadFile(placed); err != nil || string(got) != string(want) {
		t.Fatalf("placed module %q differs from the signed module (%v)", placed, err)
	}
	// The publisher's signed catalogue: stored by the server as uploaded,
	// never replaced by an older one, required by the client.
	signKey, err := pki.ReadKey(f.key)
	if err != nil {
		t.Fatal(err)
	}
	signCerts, err := pki.ReadCerts(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	catalogue := func(version int64) []byte {
		b, err := patchverify.SignCatalogue(patchverify.Catalogue{Version: version, Expires: time.Now().Add(time.Hour),
			Patches: []patchverify.CatalogueEntry{{Filename: up.Filename, SHA256: up.SHA256, Kernel: machineKernel, Version: 1}}}, signKey, signCerts[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cat1, cat2 := catalogue(1), catalogue(2)
	var catResp map[string]any
	if err := admin.Do(ctx, http.MethodPost, "/v1/admin/catalogue", nil, cat2, &catResp); err != nil || catResp["version"] != float64(2) {
		t.Fatalf("catalogue upload: %v %v", catResp, err)
	}
	if err := admin.Do(ctx, http.MethodPost, "/v1/admin/catalogue", nil, cat1, nil); !asServerError(err, &se) || se.Status != http.StatusUnprocessableEntity || !strings.Contains(se.Message, "older than one already seen") {
		t.Fatalf("older catalogue upload: %v", err)
	}
	if got, err := admin.Get(ctx, "/v1/catalogue"); err != nil || !bytes.Equal(got, cat2) {
		t.Fatalf("served catalogue differs from the uploaded one: %v", err)
	}
	out = mustRun(t, nil, "client", d.clientArgs("refresh", "client-1", d.a.URL, "--signing-cert", f.cert, "--require-catalogue")...)
	if !strings.Contains(out, "up to date") {
		t.Fatalf("refresh --require-catalogue: %q", out)
	}

	// A client pinning another certificate refuses the same patch.
	other := filepath.Join(d.dir, "other-cert.pem")
	mustRun(t, nil, "patchtool", "keygen", "--bits", "3072", "--key", filepath.Join(d.dir, "other-key.pem"), "--cert", other)
	if r := run(t, nil, "client", d.clientArgs("refresh", "client-1", d.a.URL, "--signing-cert", other)...); r.code != 1 || !strings.Contains(r.stderr, "not a pinned certificate") {
		t.Fatalf("refresh against another pinned cert: exit %d, %s", r.code, r.stderr)
	}

	out = mustRun(t, nil, "client", d.clientArgs("report", "client-1", d.a.URL, "--report-key", d.reportKey)...)
	if !strings.Contains(out, "machine_id k1:") {
		t.Fatalf("report: %q", out)
	}
	reports, err := admin.Reports(ctx)
	if err != nil || len(reports) != 1 {
		t.Fatalf("reports: %v %v", reports, err)
	}
	rawID, _ := os.ReadFile(filepath.Join(d.dir, "client-1-machine-id"))
	if strings.Contains(string(reports[0].Report), strings.TrimSpace(string(rawID))) {
		t.Fatal("the raw machine ID reached the server")
	}
	// A report hashed under another deployment's key is refused.
	if r := run(t, nil, "client", d.clientArgs("report", "client-1", d.a.URL, "--report-key", "k9:"+randHex(32))...); r.code != 1 || !strings.Contains(r.stderr, "400") {
		t.Fatalf("report under a foreign key: exit %d, %s", r.code, r.stderr)
	}

	// Sync: a downstream server (in memory) pulls and verifies the patch.
	sync, err := admin.IssueToken(ctx, "sync-tokens", api.IssueTokenRequest{Name: "downstream"})
	if err != nil {
		t.Fatal(err)
	}
	down := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec},
		"server", append(serverArgs(f, filepath.Join(d.dir, "downstream")), "--upstream-url", d.a.URL,
			"--upstream-sync-token", sync.Token, "--upstream-ca-certs", d.caBundle)...)
	dadmin, err := client.NewAdmin(down.URL, down.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dadmin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	res, err := dadmin.Sync(ctx)
	if err != nil || res.Fetched+res.Known != 1 {
		t.Fatalf("sync: %+v %v", res, err)
	}
	if _, err := dadmin.Get(ctx, "/v1/patches/"+up.Filename); err != nil {
		t.Fatalf("downstream does not serve the synced patch: %v", err)
	}
	// The catalogue is relayed byte for byte: clients check the publisher's
	// signature, not the relay's.
	if got, err := dadmin.Get(ctx, "/v1/catalogue"); err != nil || !bytes.Equal(got, cat2) {
		t.Fatalf("downstream catalogue differs from upstream's: %v", err)
	}
	if err := admin.Revoke(ctx, "sync-tokens", sync.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := dadmin.Sync(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("sync with a revoked token: %v", err)
	}

	// Listings never show token values.
	for _, kind := range []string{"auth-tokens", "sync-tokens", "machines"} {
		var raw json.RawMessage
		if err := admin.Do(ctx, http.MethodGet, "/v1/admin/"+kind, nil, nil, &raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), reg.Token) || strings.Contains(string(raw), sync.Token) {
			t.Fatalf("%s listing shows a token value", kind)
		}
	}

	if db != "" {
		sharedDatabase(t, ctx, d, f, admin)
	}

	// The security events name what happened, never a secret.
	secrets := []string{f.password, reg.Token, sync.Token, d.contractT, d.reportKey[3:], strings.TrimPrefix(admin.Authorization, "Macaroon ")}
	for _, name := range []string{"client-1", "client-2"} {
		var st client.State
		if js, err := os.ReadFile(filepath.Join(d.dir, name, "state.json")); err == nil && json.Unmarshal(js, &st) == nil {
			secrets = append(secrets, st.MachineToken)
		}
		raw, _ := os.ReadFile(filepath.Join(d.dir, name+"-machine-id"))
		secrets = append(secrets, strings.TrimSpace(string(raw)))
	}
	logs := d.a.stderr.String() + d.contracts.stderr.String() + down.stderr.String()
	if !strings.Contains(logs, `"event":"machine_registered"`) {
		t.Error("no security events in the server's log")
	}
	for i, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("secret %d appears in the logs", i)
		}
	}
}

// sharedDatabase starts a second server on the same database: it accepts
// A's macaroon, knows A's machines and patches, and honours A's
// revocations within its --token-cache-ttl and --revocation-cache-ttl (B
// caches machine tokens and admin-macaroon revocations; A does not, so A's
// own refusals elsewhere in the story stay immediate).
func sharedDatabase(t *testing.T, ctx context.Context, d *deployment, f *fixtures, adminA *client.Admin) {
	const cacheTTL = time.Second
	b := start(t, d.serverEnv(f), "server", append(serverArgs(f, filepath.Join(d.dir, "server-b")),
		"--token-cache-ttl", cacheTTL.String(), "--revocation-cache-ttl", cacheTTL.String())...)
	adminB, err := client.NewAdmin(b.URL, bundle(t, t.TempDir(), b.line(t, `CA in (\S+) \(`)))
	if err != nil {
		t.Fatal(err)
	}
	adminB.Authorization = adminA.Authorization // minted by A
	machines, err := adminB.ListTokens(ctx, "machines")
	if err != nil {
		t.Fatalf("A's macaroon on B: %v", err)
	}
	if len(machines) != 2 {
		t.Fatalf("B knows %d machines, want A's 2", len(machines))
	}
	caB := bundle(t, t.TempDir(), b.line(t, `CA in (\S+) \(`), d.caBundle)
	d.caBundle = caB
	st := mustRun(t, nil, "client", d.clientArgs("status", "client-1", b.URL)...)
	if !strings.Contains(st, "machine token: accepted") {
		t.Fatalf("status on B: %q", st)
	}
	mustRun(t, nil, "client", d.clientArgs("refresh", "client-1", b.URL, "--signing-cert", f.cert, "--tls-patch-download")...)
	// Revoke client 1's machine token on A: B, which has it cached, refuses
	// it within its cache TTL (polled with a deadline of TTL plus margin for
	// the client process, never slept on), and keeps accepting client 2.
	var id, machine string
	for _, m := range machines {
		if !m.Revoked {
			id, machine = m.ID, m.Machine
			break
		}
	}
	if err := adminA.Revoke(ctx, "machines", id); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	deadline := revokedAt.Add(cacheTTL + 5*time.Second)
	for _, name := range []string{"client-1", "client-2"} {
		mid := mustRun(t, nil, "client", "machine-id", "--machine-id-file", filepath.Join(d.dir, name+"-machine-id"))
		revoked := strings.TrimSpace(mid) == machine
		for {
			r := run(t, nil, "client", d.clientArgs("status", name, b.URL)...)
			if revoked == (r.code != 0) {
				if revoked {
					t.Logf("B refused the token revoked on A after %v (cache TTL %v)", time.Since(revokedAt), cacheTTL)
				}
				break
			}
			if !revoked || time.Now().After(deadline) {
				t.Fatalf("status of %s on B %v after revocation on A: exit %d (revoked=%v)\n%s%s",
					name, time.Since(revokedAt), r.code, revoked, r.stdout, r.stderr)
			}
		}
	}

	// A second admin session, logged in on A and accepted by B (so B's
	// revocation snapshot is loaded), is logged out on A: A refuses it at
	// once, B within its revocation cache TTL (polled with the same
	// deadline, never slept on), and A's first session stays accepted on B.
	session := *adminA
	if _, err := session.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	onB := *adminB
	onB.Authorization = session.Authorization
	if _, err := onB.ListTokens(ctx, "machines"); err != nil {
		t.Fatalf("second session on B before logout: %v", err)
	}
	if err := session.Do(ctx, http.MethodPost, "/v1/admin/logout", nil, nil, nil); err != nil {
		t.Fatalf("logout on A: %v", err)
	}
	loggedOutAt := time.Now()
	var se *client.ServerError
	if _, err := session.ListTokens(ctx, "machines"); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("logged-out session on A: %v, want 401 at once", err)
	}
	deadline = loggedOutAt.Add(cacheTTL + 5*time.Second)
	for {
		_, err := onB.ListTokens(ctx, "machines")
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
			t.Logf("B refused the session logged out on A after %v (cache TTL %v)", time.Since(loggedOutAt), cacheTTL)
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("logged-out session on B %v after logout on A: %v, want 401", time.Since(loggedOutAt), err)
		}
	}
	if _, err := adminB.ListTokens(ctx, "machines"); err != nil {
		t.Fatalf("A's first session on B after the other's logout: %v", err)
	}
}
