package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/server"
	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/lpsec/lpsec/internal/pgtest"
	"github.com/lpsec/lpsec/internal/testenv"
)

// bigPatch is a signed patch of about 16 MB (the test module padded with
// random bytes before signing, packaged as an uncompressed tar), made once.
var (
	bigOnce sync.Once
	bigFile string
	bigErr  string
)

func getBigPatch(t *testing.T) string {
	t.Helper()
	f := getFixtures(t)
	bigOnce.Do(func() {
		mod := filepath.Join(f.dir, "livepatch_big.ko")
		// .modinfo agrees with the package step's metadata (patchverify
		// binds them); the padding after the ELF object is covered by the
		// signature like the rest of the file.
		raw := kmodtest.Module("license=GPL", "livepatch=Y", "name=livepatch_big", "vermagic="+machineKernel+" SMP preempt mod_unload ")
		pad := make([]byte, 16<<20)
		_, _ = io.ReadFull(randReader{}, pad)
		if err := os.WriteFile(mod, append(raw, pad...), 0o644); err != nil {
			bigErr = err.Error()
			return
		}
		bigFile = filepath.Join(f.dir, "livepatch-"+machineKernel+"-2-x86_64.tar")
		for _, args := range [][]string{
			{"sign", "--key", f.key, "--cert", f.cert, mod},
			{"package", "--kernel", kernel, "--flavour", flavour, "--version", "2", mod, "-o", bigFile},
		} {
			if out, err := exec.Command(filepath.Join(bin, "patchtool"), args...).CombinedOutput(); err != nil {
				bigErr = fmt.Sprintf("patchtool %v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if bigErr != "" {
		t.Fatal(bigErr)
	}
	return bigFile
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	b := []byte(randHex(len(p)/2 + 1))
	return copy(p, b), nil
}

func fileSHA256(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// waitStderr polls the process's log for a substring: the process says
// when it reached a state, the test does not guess how long that takes.
func (d *daemon) waitStderr(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.stderr.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 30s:\n%s", sub, d.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling a log, not synchronising goroutines
	}
}

func adminFor(t *testing.T, ctx context.Context, d *daemon, f *fixtures) *client.Admin {
	t.Helper()
	admin, err := client.NewAdmin(d.URL, d.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	return admin
}

// TestSIGTERMDrainsSlowDownload: SIGTERM during a download of a large
// patch by a slow reader stops new connections but lets the download
// complete, byte for byte, and the server exits 0 logging the drain.
func TestSIGTERMDrainsSlowDownload(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	big := getBigPatch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec},
		"server", append(serverArgs(f, filepath.Join(t.TempDir(), "s")), "--shutdown-timeout", "60s")...)
	admin := adminFor(t, ctx, srv, f)
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}

	hc := slowClient(t, srv)
	resp, err := hc.Get(up.Patch.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.waitStderr(t, `"event":"server_shutdown_started"`)
	if !strings.Contains(srv.stderr.String(), `"in_flight":1`) {
		t.Errorf("the shutdown log does not count the download in flight:\n%s", srv.stderr)
	}
	// New connections are refused once the drain has begun.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "https://"), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted during the drain")
	}
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("the download was cut after %d more bytes: %v", n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != up.Patch.SHA256 || n+1<<20 != int64(len(data)) {
		t.Fatalf("downloaded %d bytes with SHA-256 %s, want %d bytes %s", n+1<<20, got, len(data), up.Patch.SHA256)
	}
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after the drain")
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after a completed drain, want 0\n%s", code, srv.stderr)
	}
	if !strings.Contains(srv.stderr.String(), `"event":"server_shutdown_done"`) || !strings.Contains(srv.stderr.String(), `"cut":0`) {
		t.Errorf("no clean server_shutdown_done record:\n%s", srv.stderr)
	}
}

// slowClient is an HTTPS client trusting srv's CA whose connections have
// a tiny receive buffer: the server cannot push a large tarball into
// socket buffers and be done before the test signals it.
func slowClient(t *testing.T, srv *daemon) *http.Client {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
		return serr
	}}
	caPEM, err := os.ReadFile(srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestShutdownTimeoutCuts: a download still running when
// --shutdown-timeout ends is cut, and the exit status (1) and the log say
// so: a drain that did not complete is never reported as clean.
func TestShutdownTimeoutCuts(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	big := getBigPatch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec},
		"server", append(serverArgs(f, filepath.Join(t.TempDir(), "s")), "--shutdown-timeout", "1s")...)
	admin := adminFor(t, ctx, srv, f)
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := slowClient(t, srv).Get(up.Patch.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 64<<10); err != nil {
		t.Fatal(err)
	}
	// The reader stops reading: the download cannot finish.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after --shutdown-timeout")
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d after a cut drain, want 1", code)
	}
	log := srv.stderr.String()
	if !strings.Contains(log, `"cut":1`) || !strings.Contains(log, "1 requests still in flight after the drain timeout") {
		t.Errorf("the log does not say the download was cut:\n%s", log)
	}
}

// TestDownloadRangesAndETag: downloads are served with ranges and an ETag
// that is the SHA-256, both stores' way.
func TestDownloadRangesAndETag(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", serverArgs(f, filepath.Join(t.TempDir(), "s"))...)
	admin := adminFor(t, ctx, srv, f)
	data, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	get := func(hdr map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.Patch.URL, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := admin.HTTP().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("ETag") != `"`+up.Patch.SHA256+`"` || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("GET: %d, %d bytes, ETag %q, Accept-Ranges %q", resp.StatusCode, len(body), resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
	}
	resp, body = get(map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
		t.Errorf("range: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(map[string]string{"Range": "bytes=0-0,2-2"})
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("two ranges: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Many ranges (each a seek, a query on PostgreSQL) get the whole
	// tarball once instead.
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("%d-%d", i*7, i*7))
	}
	resp, body = get(map[string]string{"Range": "bytes=" + strings.Join(many, ",")})
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("100 ranges: %d, %d bytes; want 200 and the whole tarball", resp.StatusCode, len(body))
	}
	resp, _ = get(map[string]string{"If-None-Match": `"` + up.Patch.SHA256 + `"`})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the SHA-256: %d, want 304", resp.StatusCode)
	}
}

// hostileUpstream is an upstream server controlled by an attacker: its
// listing points outside its origin, redirects there, names unsafe files
// and lies about hashes, around one good entry. canary is the outside
// origin; it must never be contacted.
func TestSyncRefusesHostileUpstream(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var canaryHits atomic.Int64
	canary := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canaryHits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer canary.Close()
	good, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	goodName := filepath.Base(f.tarball)
	goodSum := fileSHA256(t, f.tarball)
	var upstream *httptest.Server
	upstream = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/sync/patches":
			u := upstream.URL
			list := api.PatchList{Patches: []api.Patch{
				{Filename: "livepatch-elsewhere-1.tar", SHA256: goodSum, URL: canary.URL + "/steal.tar"},
				{Filename: "../../etc/cron.d/x.tar", SHA256: goodSum, URL: u + "/good"},
				{Filename: "livepatch-redirect-1.tar", SHA256: goodSum, URL: u + "/redirect"},
				{Filename: "livepatch-http-1.tar", SHA256: goodSum, URL: strings.Replace(u, "https:", "http:", 1) + "/good"},
				{Filename: "livepatch-badhash-1.tar", SHA256: strings.Repeat("0", 64), URL: u + "/good"},
				{Filename: goodName, SHA256: goodSum, URL: u + "/good"},
			}}
			_ = json.NewEncoder(w).Encode(list)
		case "/redirect":
			http.Redirect(w, r, canary.URL+"/redirected.tar", http.StatusFound)
		case "/good":
			_, _ = w.Write(good)
		default:
			http.NotFound(w, r)
		}
	}))
	defer upstream.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	down := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_UPSTREAM_SYNC_TOKEN=t"}, "server",
		append(serverArgs(f, filepath.Join(dir, "down")), "--upstream-url", upstream.URL, "--upstream-ca-certs", caFile)...)
	admin := adminFor(t, ctx, down, f)
	res, err := admin.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched+res.Known != 1 || res.Refused != 5 {
		t.Errorf("sync: %+v, want the good patch and 5 refused", res)
	}
	var list api.PatchList
	if err := admin.Do(ctx, http.MethodGet, "/v1/admin/patches", nil, nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Patches) != 1 || list.Patches[0].Filename != goodName {
		t.Errorf("downstream serves %+v, want only %s", list.Patches, goodName)
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the server contacted an origin outside the upstream's %d times", n)
	}
	log := down.stderr.String()
	for _, reason := range []string{`"reason":"outside_origin"`, `"reason":"bad_filename"`, `"reason":"bad_url"`, `"filename":"livepatch-badhash-1.tar"`} {
		if !strings.Contains(log, reason) {
			t.Errorf("no sync_patch_refused record with %s", reason)
		}
	}
}

type readiness = server.Readiness

func getReady(t *testing.T, ctx context.Context, admin *client.Admin) (int, readiness) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin.URL("/readyz"), nil)
	resp, err := admin.HTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

// TestReadinessAndWrongKEK: /readyz names the failing check when the
// stored root keys no longer open with this KEK, and a server started
// with a KEK other than the one the keys were sealed under refuses to
// start, saying so.
func TestReadinessAndWrongKEK(t *testing.T) {
	t.Parallel()
	cluster := pgtest.StartCluster(t)
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	dir := t.TempDir()
	kek := randB64(32)
	env := []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_DATABASE_URL=" + cluster.URL}
	srv := start(t, append(env, "LPSEC_SERVER_ROOT_KEY_KEK="+kek), "server", serverArgs(f, filepath.Join(dir, "a"))...)
	admin := adminFor(t, ctx, srv, f)
	if code, r := getReady(t, ctx, admin); code != 200 || !r.Ready || r.Checks["database"] != "ok" || r.Checks["root_keys"] != "ok" || r.Checks["signing_certs"] != "ok" {
		t.Fatalf("readyz: %d %+v", code, r)
	}

	// A second server with another KEK on the same database stops at
	// start-up (exit 1) naming the flag, instead of answering 503 to
	// every login.
	r := run(t, append(env, "LPSEC_SERVER_ROOT_KEY_KEK="+randB64(32)), "server", serverArgs(f, filepath.Join(dir, "b"))...)
	if r.code != 1 || !strings.Contains(r.stderr, "--root-key-kek: the macaroon root keys in the database were encrypted under a different key-encryption key") {
		t.Errorf("wrong KEK at start-up: exit %d, stderr %q", r.code, r.stderr)
	}

	// Keys sealed under another KEK while the first server runs: once
	// its cache ages out, /readyz says which check fails.
	db, err := sql.Open("pgx", cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE lpsec_macaroon_root_keys SET kek_id = 'another-kek'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, r := getReady(t, ctx, admin)
		if code == http.StatusServiceUnavailable {
			if len(r.Failed) != 1 || r.Failed[0] != "root_keys" || !strings.Contains(r.Checks["root_keys"], "--root-key-kek") {
				t.Errorf("readyz with root keys under another KEK: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d 20s after the root keys changed KEK", code)
		}
		time.Sleep(100 * time.Millisecond) // polling a cache expiry
	}
	if _, err := admin.Get(ctx, "/healthz"); err != nil {
		t.Errorf("healthz (liveness) must stay 200: %v", err)
	}
}

// TestServerUsageErrors: configuration mistakes exit 2 with a message
// that says what to pass.
func TestServerUsageErrors(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	dir := t.TempDir()
	base := []string{"--state-dir", filepath.Join(dir, "s"), "--signing-cert", f.cert}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"wildcard listen without public URL", nil, append([]string{"--listen", "0.0.0.0:0"}, base...),
			"--listen 0.0.0.0:0 is a wildcard address and patch URLs need a name clients can reach: pass --public-url https://HOSTNAME:0"},
		{"IPv6 wildcard", nil, append([]string{"--listen", "[::]:8443"}, base...), "pass --public-url https://HOSTNAME:8443"},
		{"empty host", nil, append([]string{"--listen", ":8443"}, base...), "is a wildcard address"},
		{"misspelt variable", []string{"LPSEC_SERVER_ADMIN_USER=alice:x"}, append([]string{"--listen", "127.0.0.1:0"}, base...),
			"unknown environment variable $LPSEC_SERVER_ADMIN_USER: did you mean $LPSEC_SERVER_ADMIN_USERS?"},
		{"duration without unit", nil, append([]string{"--listen", "127.0.0.1:0", "--sync-interval", "5"}, base...),
			`--sync-interval: invalid value "5"; want a Go duration such as 30s, 5m or 240h`},
		{"secret twice", []string{"LPSEC_SERVER_REPORT_KEY_FILE=" + f.cert}, append([]string{"--listen", "127.0.0.1:0", "--report-key", "k1:" + randHex(32)}, base...),
			"give --report-key or --report-key-file, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, "server", tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	// Variables of another binary's namespace, or the old shared one,
	// are not this binary's business.
	r := run(t, []string{"LPSEC_CLIENT_KERNEL=6.1.0-18-amd64", "LPSEC_FORCE=1", "LPSEC_SERVER_LISTEN=0.0.0.0:0"}, "server", base...)
	if r.code != 2 || !strings.Contains(r.stderr, "wildcard") {
		t.Errorf("LPSEC_SERVER_LISTEN must be read and others ignored: exit %d %q", r.code, r.stderr)
	}
	for _, name := range []string{"server", "client", "contracts", "patchtool"} {
		r := run(t, nil, name, "--version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "lpsec "+name+" ") {
			t.Errorf("%s --version: exit %d, %q", name, r.code, r.stdout)
		}
		h := run(t, nil, name, "-h")
		if !strings.Contains(h.stdout, "exit status: 0 success, 1 failure, 2 usage error") {
			t.Errorf("%s -h does not list the exit statuses", name)
		}
	}
}

// TestTLSHostnames: --tls-hostnames puts the names in the generated
// certificate, and a name added later gets a new certificate from the
// same CA.
func TestTLSHostnames(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	state := filepath.Join(t.TempDir(), "s")
	args := append(serverArgs(f, state), "--public-url", "https://patches.example.net:8443")
	first := start(t, nil, "server", append(args, "--tls-hostnames", "lp.example.org")...)
	first.stop(t)
	second := start(t, nil, "server", append(args, "--tls-hostnames", "lp.example.org", "--tls-hostnames", "10.1.2.3")...)
	pemBytes, err := os.ReadFile(filepath.Join(state, "tls", "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"lp.example.org", "10.1.2.3", "patches.example.net", "localhost", "127.0.0.1"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	// Served, and chaining to the CA clients already have.
	caPEM, err := os.ReadFile(second.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", second.line(t, `\(address (\S+),`), &tls.Config{RootCAs: pool, ServerName: "lp.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if !strings.HasPrefix(second.URL, "https://patches.example.net:8443") {
		t.Errorf("URL %s is not --public-url", second.URL)
	}
}

// TestSIGHUPReloads: after SIGHUP a user added to --admin-users-file can
// log in and a removed one cannot, and patches must be signed by the
// certificate now in the --signing-cert file.
func TestSIGHUPReloads(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	users := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(users, []byte(f.userSpec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pinned := filepath.Join(dir, "signing-cert.pem")
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pinned, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := start(t, nil, "server", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "s"),
		"--signing-cert", pinned, "--admin-users-file", users)
	admin, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	tarball, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Upload(ctx, tarball); err != nil {
		t.Fatalf("upload signed by the pinned certificate: %v", err)
	}

	if err := os.WriteFile(users, []byte("bob"+strings.TrimPrefix(f.userSpec, "alice")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "patchtool", "keygen", "--bits", "3072", "--key", filepath.Join(dir, "other-key.pem"), "--cert", pinned, "--force")
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	srv.waitStderr(t, `"event":"server_reloaded"`)
	if _, err := admin.Login(ctx, "bob", f.password); err != nil {
		t.Errorf("bob after the reload: %v", err)
	}
	var se *client.ServerError
	if _, err := admin.Upload(ctx, tarball); !asServerError(err, &se) || se.Status != http.StatusUnprocessableEntity {
		t.Errorf("upload signed by the certificate no longer pinned: %v, want 422", err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); !asServerError(err, &se) || se.Status != http.StatusUnauthorized {
		t.Errorf("alice after she was removed: %v, want 401", err)
	}
}

// TestMetrics scrapes --metrics-listen with Prometheus' own text parser:
// the request, download and security-event counters say what happened.
func TestMetrics(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_METRICS_LISTEN=127.0.0.1:0"}, "server",
		serverArgs(f, filepath.Join(t.TempDir(), "s"))...)
	metricsURL := srv.line(t, `metrics on (http://\S+)`)
	admin := adminFor(t, ctx, srv, f)
	data, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Upload(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Get(ctx, "/v1/patches/"+up.Patch.Filename); err != nil {
		t.Fatal(err)
	}
	var se *client.ServerError
	if _, err := admin.Login(ctx, "alice", "wrong password"); !asServerError(err, &se) {
		t.Fatalf("bad password: %v", err)
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not Prometheus text format: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		fam, ok := fams[name]
		if !ok {
			t.Errorf("no metric %s", name)
			return -1
		}
		for _, m := range fam.Metric {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		t.Errorf("no %s with %v", name, labels)
		return -1
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lpsec_http_requests_total", map[string]string{"route": "GET /v1/patches/{filename}", "code": "200"}, 1},
		{"lpsec_http_requests_total", map[string]string{"route": "POST /v1/admin/patches", "code": "201"}, 1},
		{"lpsec_http_request_duration_seconds", map[string]string{"route": "GET /v1/patches/{filename}"}, 1},
		{"lpsec_patches_served_total", nil, 1},
		{"lpsec_patch_bytes_served_total", nil, float64(len(data))},
		{"lpsec_security_events_total", map[string]string{"event": "patch_uploaded", "reason": ""}, 1},
		{"lpsec_security_events_total", map[string]string{"event": "basicauth_authn_failed", "reason": "bad_password"}, 1},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func matches(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// TestSystemdUnit: the unit file in examples/server passes
// systemd-analyze verify (with ExecStart pointed at the built binary).
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	sa := testenv.LookPath(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join("..", "server", "lpsec-server.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/lpsec-server", exe(t, "server"))
	p := filepath.Join(t.TempDir(), "lpsec-server.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
	// verify prints its findings; any line about our unit is a failure.
	if err != nil || strings.Contains(string(out), "lpsec-server.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSyncBounds: an upstream listing many patches gets at most
// --sync-max-patches downloads and --sync-max-bytes bytes per sync; the
// rest is refused in one log record and waits for the next sync.
func TestSyncBounds(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	good, err := os.ReadFile(f.tarball)
	if err != nil {
		t.Fatal(err)
	}
	sum := fileSHA256(t, f.tarball)
	var downloads atomic.Int64
	var upstream *httptest.Server
	upstream = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/catalogue" {
			http.NotFound(w, r) // no signed catalogue: the relay has nothing to do
			return
		}
		if r.URL.Path == "/v1/sync/patches" {
			var list api.PatchList
			for i := range 50 {
				list.Patches = append(list.Patches, api.Patch{Filename: fmt.Sprintf("livepatch-%02d.tar.gz", i), SHA256: sum, URL: upstream.URL + "/good"})
			}
			_ = json.NewEncoder(w).Encode(list)
			return
		}
		downloads.Add(1)
		_, _ = w.Write(good)
	}))
	defer upstream.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		fetch int64
	}{
		{"count", []string{"--sync-max-patches", "3"}, 3},
		{"bytes", []string{"--sync-max-bytes", fmt.Sprint(2*len(good) + len(good)/2)}, 2},
	} {
		downloads.Store(0)
		srv := start(t, []string{"LPSEC_SERVER_UPSTREAM_SYNC_TOKEN=t"}, "server",
			append(append(serverArgs(f, filepath.Join(dir, tc.name)), "--upstream-url", upstream.URL, "--upstream-ca-certs", caFile), tc.args...)...)
		srv.waitStderr(t, `"event":"sync_done"`)
		log := srv.stderr.String()
		if !strings.Contains(log, fmt.Sprintf(`"fetched":%d,`, tc.fetch)) || strings.Count(log, `"remaining":`) != 1 {
			t.Errorf("%s: want %d fetched and one bound record:\n%s", tc.name, tc.fetch, log)
		}
		// The byte budget stops a download in its middle: it was asked
		// for, but never stored.
		if n := downloads.Load(); n != tc.fetch && !(tc.name == "bytes" && n == tc.fetch+1) {
			t.Errorf("%s: %d downloads from the upstream, want %d", tc.name, n, tc.fetch)
		}
		srv.stop(t)
	}
}
