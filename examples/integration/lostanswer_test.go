package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// Issue 19 item 2 over the wire: the server commits a registration and
// its answer is lost (a proxy reads the server's whole answer and cuts the
// client's connection instead of passing it on). The client repeats the registration with the same
// idempotency key and is enabled; the one-use token is not spent twice,
// the unseen machine token is revoked, and the machine has one live token.

func TestLostAnswerMemory(t *testing.T) {
	t.Parallel()
	runLostAnswer(t, "")
}

func TestLostAnswerPostgres(t *testing.T) {
	t.Parallel()
	runLostAnswer(t, pgtest.Database(t))
}

// dropFirstAnswer is a TLS reverse proxy in front of the server. It
// passes the first request on, reads the server's whole answer (so the
// server has committed whatever it did), then cuts the client's connection
// without sending a byte of it. Later requests pass through.
type dropFirstAnswer struct {
	url     string
	calls   atomic.Int32
	dropped atomic.Bool
}

func newDropFirstAnswer(t *testing.T, target, targetCA, dir string) (*dropFirstAnswer, string) {
	t.Helper()
	files, err := pki.EnsureServerTLS(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(targetCA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	upstream := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	t.Cleanup(upstream.CloseIdleConnections)
	p := &dropFirstAnswer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host, out.Host = "https", target, target
		resp, err := upstream.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if p.calls.Add(1) == 1 && resp.StatusCode == http.StatusOK {
			// The answer is complete upstream; the client never sees it.
			p.dropped.Store(true)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p, files.CACert
}

func runLostAnswer(t *testing.T, db string) {
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d := &deployment{dir: t.TempDir(), reportKey: "k1:" + randHex(32), kek: randB64(32), db: db}
	d.a = start(t, d.serverEnv(f), "server", serverArgs(f, filepath.Join(d.dir, "server"))...)
	d.caBundle = d.a.line(t, `CA in (\S+) \(`)
	admin, err := client.NewAdmin(d.a.URL, d.caBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	oneUse, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "one-use", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	proxy, proxyCA := newDropFirstAnswer(t, strings.TrimPrefix(d.a.URL, "https://"), d.caBundle, filepath.Join(d.dir, "proxy"))
	d.caBundle = bundle(t, d.dir, d.caBundle, proxyCA)
	if err := os.WriteFile(filepath.Join(d.dir, "m-machine-id"), []byte(randHex(16)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, nil, "client", d.clientArgs("enable", "m", proxy.url, oneUse.Token)...)
	if !strings.Contains(out, "enabled: machine") {
		t.Fatalf("enable through a lost answer: %q", out)
	}
	if !proxy.dropped.Load() || proxy.calls.Load() != 2 {
		t.Fatalf("dropped %v, %d registrations through the proxy; want a dropped answer and one retry", proxy.dropped.Load(), proxy.calls.Load())
	}
	var st client.State
	js, err := os.ReadFile(filepath.Join(d.dir, "m", "state.json"))
	if err != nil || json.Unmarshal(js, &st) != nil {
		t.Fatalf("state: %v", err)
	}
	// The saved token works; the machine has one live record and one
	// revoked (the unseen token); the one-use token's use was taken once.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.a.URL+"/v1/client/"+st.Machine+"/patches?kernel=x", nil)
	req.Header.Set("Authorization", "Bearer "+st.MachineToken)
	resp, err := admin.HTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the saved machine token: %d", resp.StatusCode)
	}
	live, revoked := 0, 0
	for _, m := range mustList(t, ctx, admin, "machines") {
		if m.Machine != st.Machine {
			continue
		}
		if m.Revoked {
			revoked++
		} else {
			live++
		}
	}
	if live != 1 || revoked != 1 {
		t.Fatalf("machine records: %d live, %d revoked; want 1 and 1 (the unseen token)", live, revoked)
	}
	for _, r := range mustList(t, ctx, admin, "auth-tokens") {
		if r.ID == oneUse.ID && (r.UsesLeft == nil || *r.UsesLeft != 0) {
			t.Fatalf("one-use token after the retry: %+v", r)
		}
	}
	if !strings.Contains(d.a.stderr.String(), `"event":"token_register_retried"`) {
		t.Error("no token_register_retried event in the log")
	}
}
