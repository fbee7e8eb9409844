package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// Issue 14 items 1-3 over the wire: a machine name with a live machine
// token cannot be taken over with a fleet token, a contract token or a
// cloned machine ID (409, the victim's token keeps working, nothing else
// changes); the holder rotates; an admin's release frees the name; a
// registration whose answer was lost is retried with its idempotency key;
// the machine list pages; the new endpoints refuse hostile input.

func TestTakeoverMemory(t *testing.T) {
	t.Parallel()
	runTakeover(t, "")
}

func TestTakeoverPostgres(t *testing.T) {
	t.Parallel()
	runTakeover(t, pgtest.Database(t))
}

// wire is a raw HTTPS client for one server.
type wire struct {
	t     *testing.T
	ctx   context.Context
	url   string
	hc    *http.Client
	admin string
}

func (w wire) do(method, path string, hdr http.Header, body string) (int, api.Error, []byte) {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.ctx, method, w.url+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e, data
}

func (w wire) register(machine string, hdr http.Header) (int, api.Error, api.RegisterResponse) {
	w.t.Helper()
	code, e, data := w.do(http.MethodPut, "/v1/client/"+machine, hdr, "")
	var rr api.RegisterResponse
	if code == http.StatusOK {
		if err := json.Unmarshal(data, &rr); err != nil {
			w.t.Fatal(err)
		}
	}
	return code, e, rr
}

func (w wire) tokenWorks(machine, tok string) bool {
	w.t.Helper()
	code, _, _ := w.do(http.MethodGet, "/v1/client/"+machine+"/patches?kernel=x", http.Header{"Authorization": {"Bearer " + tok}}, "")
	return code == http.StatusOK
}

// snapshot is what a refused request must not change: every machine
// record and every registration token's uses.
func snapshot(t *testing.T, ctx context.Context, admin *client.Admin) string {
	t.Helper()
	ms, err := admin.ListTokens(ctx, "machines")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := admin.ListTokens(ctx, "auth-tokens")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.ID + " " + m.Machine + " " + m.Tier + " " + m.Issuer + " " + map[bool]string{true: "revoked", false: "live"}[m.Revoked] + "\n")
	}
	for _, r := range rs {
		b.WriteString(r.ID + " " + r.Name + " " + map[bool]string{true: "revoked", false: "live"}[r.Revoked])
		if r.UsesLeft != nil {
			b.WriteString(" uses_left=" + strconv.Itoa(*r.UsesLeft))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func runTakeover(t *testing.T, db string) {
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := &deployment{dir: t.TempDir(), contractT: "contract-" + randHex(12), reportKey: "k1:" + randHex(32), kek: randB64(32), db: db}
	d.contracts = start(t, nil, "contracts", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(d.dir, "contracts"),
		"--contract-tokens", d.contractT)
	pub := d.contracts.line(t, `public key (\S+) `)
	contractsCA := d.contracts.line(t, `CA in (\S+)`)
	args := append(serverArgs(f, filepath.Join(d.dir, "server-a")), "--contracts-url", d.contracts.URL, "--contracts-public-key", pub)
	d.a = start(t, d.serverEnv(f), "server", args...)
	d.caBundle = bundle(t, d.dir, d.a.line(t, `CA in (\S+) \(`), contractsCA)
	admin, err := client.NewAdmin(d.a.URL, d.caBundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	servers := []wire{{t: t, ctx: ctx, url: d.a.URL, hc: admin.HTTP(), admin: admin.Authorization}}
	var orphan *api.IssuedToken
	if db != "" {
		// What earlier versions left in the database: an unlimited internal
		// registration token per start. A server revokes them at start.
		orphan, err = admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "entitlement-service registrations (internal, 127.0.0.1:1)", Uses: -1})
		if err != nil {
			t.Fatal(err)
		}
		// A second server on the same database: possession is enforced by
		// the store, not by one process.
		b := start(t, d.serverEnv(f), "server", append(serverArgs(f, filepath.Join(d.dir, "server-b")),
			"--contracts-url", d.contracts.URL, "--contracts-public-key", pub)...)
		d.caBundle = bundle(t, t.TempDir(), b.line(t, `CA in (\S+) \(`), d.caBundle)
		adminB, err := client.NewAdmin(b.URL, d.caBundle)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, wire{t: t, ctx: ctx, url: b.URL, hc: adminB.HTTP(), admin: admin.Authorization})
		for _, r := range mustList(t, ctx, admin, "auth-tokens") {
			if r.ID == orphan.ID && !r.Revoked {
				t.Fatal("a leftover internal registration token survived a server start")
			}
		}
		if code, _, _ := servers[0].register(randHex(16), http.Header{"Authorization": {"Bearer " + orphan.Token}}); code != 401 {
			t.Fatalf("registration with a leftover internal token: %d, want 401", code)
		}
	}
	a := servers[0]

	fleet, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "fleet", Uses: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The victim enables with the fleet token, through the client binary.
	victimID := randHex(16)
	idFile := func(name, id string) {
		if err := os.WriteFile(filepath.Join(d.dir, name+"-machine-id"), []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idFile("victim", victimID)
	mustRun(t, nil, "client", d.clientArgs("enable", "victim", d.a.URL, fleet.Token)...)
	victimMachine := strings.TrimSpace(mustRun(t, nil, "client", "machine-id", "--machine-id-file", filepath.Join(d.dir, "victim-machine-id")))
	victimTok := func() string {
		var st client.State
		js, err := os.ReadFile(filepath.Join(d.dir, "victim", "state.json"))
		if err != nil || json.Unmarshal(js, &st) != nil {
			t.Fatalf("victim state: %v", err)
		}
		return st.MachineToken
	}
	vtok := victimTok()

	// 1. Takeover attempts over the wire, on every server.
	before := snapshot(t, ctx, admin)
	for _, w := range servers {
		for _, tc := range []struct {
			name string
			hdr  http.Header
		}{
			{"fleet token", http.Header{"Authorization": {"Bearer " + fleet.Token}}},
			{"fleet token with a guessed current token", http.Header{"Authorization": {"Bearer " + fleet.Token},
				api.HeaderCurrentToken: {"0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b"}}},
			{"fleet token with a made-up idempotency key", http.Header{"Authorization": {"Bearer " + fleet.Token},
				api.HeaderIdempotencyKey: {"1b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b"}}},
		} {
			code, e, _ := w.register(victimMachine, tc.hdr)
			if code != http.StatusConflict || e.Code != "machine_taken" || !strings.Contains(e.Message, "cloned") ||
				!strings.Contains(e.Message, "/v1/admin/machines/release") {
				t.Errorf("%s on %s: %d %+v, want 409 machine_taken with the fix", tc.name, w.url, code, e)
			}
			if !w.tokenWorks(victimMachine, vtok) {
				t.Fatalf("%s: the victim's token stopped working", tc.name)
			}
		}
	}
	// A clone of the victim's VM (same machine ID), with the fleet token and
	// with a contract token, through the client binary: refused, and the
	// client says what happened and how to fix it.
	idFile("clone", victimID)
	for _, w := range servers {
		for _, extra := range [][]string{{fleet.Token}, {"--contract", "--contracts-url", d.contracts.URL, d.contractT}} {
			r := run(t, nil, "client", d.clientArgs("enable", "clone", w.url, extra...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "409") || !strings.Contains(r.stderr, "cloned VM") {
				t.Errorf("clone enable %v on %s: exit %d, %s", extra[0], w.url, r.code, r.stderr)
			}
		}
	}
	if after := snapshot(t, ctx, admin); after != before {
		t.Fatalf("refused takeovers changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !a.tokenWorks(victimMachine, vtok) {
		t.Fatal("the victim's token stopped working")
	}

	// 2. The holder re-enables: a rotation, one use, the old token revoked.
	mustRun(t, nil, "client", d.clientArgs("enable", "victim", d.a.URL, fleet.Token)...)
	newTok := victimTok()
	if newTok == vtok || a.tokenWorks(victimMachine, vtok) || !servers[len(servers)-1].tokenWorks(victimMachine, newTok) {
		t.Fatal("re-enable with the saved state did not rotate the machine token")
	}
	vtok = newTok

	// 3. Hostile input to the new endpoint and headers: refused with a
	// clear error, nothing changed.
	before = snapshot(t, ctx, admin)
	authz := http.Header{"Authorization": {admin.Authorization}}
	withCT := func(h http.Header, ct string) http.Header {
		h = h.Clone()
		h.Set("Content-Type", ct)
		return h
	}
	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
		body               string
		want               int
		code               string
	}{
		{"release without macaroon", "POST", "/v1/admin/machines/release", nil, `{"machine":"` + victimMachine + `"}`, 401, ""},
		{"release malformed machine", "POST", "/v1/admin/machines/release", authz, `{"machine":"../../etc"}`, 400, "bad_machine"},
		{"release uppercase machine", "POST", "/v1/admin/machines/release", authz, `{"machine":"` + strings.ToUpper(victimMachine) + `"}`, 400, "bad_machine"},
		{"release empty machine", "POST", "/v1/admin/machines/release", authz, `{"machine":""}`, 400, "bad_machine"},
		{"release unknown machine", "POST", "/v1/admin/machines/release", authz, `{"machine":"` + randHex(16) + `"}`, 404, "not_found"},
		{"release oversized body", "POST", "/v1/admin/machines/release", authz, `{"machine":"` + strings.Repeat("a", 100<<10) + `"}`, 413, "too_large"},
		{"release unknown field", "POST", "/v1/admin/machines/release", authz, `{"machine":"` + victimMachine + `","all":true}`, 400, "bad_request"},
		{"release trailing data", "POST", "/v1/admin/machines/release", authz, `{"machine":"` + victimMachine + `"}{}`, 400, "bad_request"},
		{"release wrong content type", "POST", "/v1/admin/machines/release", withCT(authz, "text/plain"), `{"machine":"` + victimMachine + `"}`, 415, "bad_content_type"},
		{"release empty body", "POST", "/v1/admin/machines/release", authz, ``, 400, "bad_request"},
		{"register malformed current token", "PUT", "/v1/client/" + victimMachine, http.Header{"Authorization": {"Bearer " + fleet.Token}, api.HeaderCurrentToken: {"{" + vtok + "}"}}, "", 400, "bad_request"},
		{"register two current tokens", "PUT", "/v1/client/" + victimMachine, http.Header{"Authorization": {"Bearer " + fleet.Token}, api.HeaderCurrentToken: {vtok, vtok}}, "", 400, "bad_request"},
		{"register malformed idempotency key", "PUT", "/v1/client/" + randHex(16), http.Header{"Authorization": {"Bearer " + fleet.Token}, api.HeaderIdempotencyKey: {"key-1"}}, "", 400, "bad_request"},
		{"register oversized idempotency key", "PUT", "/v1/client/" + randHex(16), http.Header{"Authorization": {"Bearer " + fleet.Token}, api.HeaderIdempotencyKey: {strings.Repeat("a", 8000)}}, "", 400, "bad_request"},
		{"machines limit zero", "GET", "/v1/admin/machines?limit=0", authz, "", 400, "bad_request"},
		{"machines limit too big", "GET", "/v1/admin/machines?limit=1001", authz, "", 400, "bad_request"},
		{"machines limit not a number", "GET", "/v1/admin/machines?limit=1e3", authz, "", 400, "bad_request"},
		{"machines two limits", "GET", "/v1/admin/machines?limit=1&limit=2", authz, "", 400, "bad_request"},
		{"machines malformed cursor", "GET", "/v1/admin/machines?after=1%20OR%201=1", authz, "", 400, "bad_request"},
		{"machines negative cursor", "GET", "/v1/admin/machines?after=-1", authz, "", 400, "bad_request"},
		{"machines unknown parameter", "GET", "/v1/admin/machines?offset=5", authz, "", 400, "bad_request"},
	} {
		code, e, _ := a.do(tc.method, tc.path, tc.hdr, tc.body)
		if code != tc.want || (tc.code != "" && e.Code != tc.code) || (tc.want >= 400 && e.Message == "") {
			t.Errorf("%s: %d %+v, want %d %s with a message", tc.name, code, e, tc.want, tc.code)
		}
	}
	if after := snapshot(t, ctx, admin); after != before {
		t.Fatalf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !a.tokenWorks(victimMachine, vtok) {
		t.Fatal("the victim's token stopped working")
	}

	// 4. The machine list pages.
	code, _, data := a.do("GET", "/v1/admin/machines?limit=1", authz, "")
	var page api.TokenList
	if code != 200 || json.Unmarshal(data, &page) != nil || len(page.Tokens) != 1 || page.Next == "" {
		t.Fatalf("first page of one: %d %s", code, data)
	}
	code, _, data = a.do("GET", "/v1/admin/machines?limit=1000&after="+page.Next, authz, "")
	var rest api.TokenList
	if code != 200 || json.Unmarshal(data, &rest) != nil || rest.Next != "" || len(rest.Tokens) == 0 || rest.Tokens[0].ID == page.Tokens[0].ID {
		t.Fatalf("second page: %d %s", code, data)
	}

	// 5. The admin releases the name on A: the victim's token stops
	// working on every server, and the clone, given the name, enables (on
	// B when there are two).
	if err := admin.Release(ctx, victimMachine); err != nil {
		t.Fatal(err)
	}
	for _, w := range servers {
		if w.tokenWorks(victimMachine, vtok) {
			t.Fatalf("%s still accepts the released token", w.url)
		}
	}
	if code, e, _ := a.do("POST", "/v1/admin/machines/release", authz, `{"machine":"`+victimMachine+`"}`); code != 404 || e.Code != "not_found" {
		t.Fatalf("second release: %d %+v", code, e)
	}
	mustRun(t, nil, "client", d.clientArgs("enable", "clone", servers[len(servers)-1].url, fleet.Token)...)

	// 6. A registration whose answer was lost: the same request again with
	// the same idempotency key gets a working token, revokes the unseen one
	// and takes no use, on either server; another key is a takeover.
	oneUse, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "one-use", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	lostMachine, key := randHex(16), "5e0f2a1c-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
	hdr := http.Header{"Authorization": {"Bearer " + oneUse.Token}, api.HeaderIdempotencyKey: {key}}
	code, e, lost := a.register(lostMachine, hdr)
	if code != 200 {
		t.Fatalf("first registration: %d %+v", code, e)
	}
	w := servers[len(servers)-1]
	code, e, got := w.register(lostMachine, hdr)
	if code != 200 || got.MachineToken == lost.MachineToken {
		t.Fatalf("retry with the same key: %d %+v", code, e)
	}
	if a.tokenWorks(lostMachine, lost.MachineToken) || !a.tokenWorks(lostMachine, got.MachineToken) {
		t.Fatal("the retry did not replace the unseen token")
	}
	hdr.Set(api.HeaderIdempotencyKey, "6e0f2a1c-3b4d-4e5f-8a6b-7c8d9e0f1a2b")
	if code, e, _ := a.register(lostMachine, hdr); code != 401 && code != 409 {
		t.Fatalf("retry with another key: %d %+v", code, e)
	}
	// Once used, the key opens nothing either.
	hdr.Set(api.HeaderIdempotencyKey, key)
	if code, _, _ := a.register(lostMachine, hdr); code == 200 {
		t.Fatal("a retry after the token was used succeeded")
	}
	if !a.tokenWorks(lostMachine, got.MachineToken) {
		t.Fatal("refused retries broke the machine's token")
	}
	for _, r := range mustList(t, ctx, admin, "auth-tokens") {
		if r.ID == oneUse.ID && (r.UsesLeft == nil || *r.UsesLeft != 0) {
			t.Fatalf("one-use token after a retry: %+v", r)
		}
	}

	// 7. No hidden registration token; entitled machines name their issuer.
	for _, r := range mustList(t, ctx, admin, "auth-tokens") {
		if r.Name != "fleet" && r.Name != "one-use" && (orphan == nil || r.ID != orphan.ID) {
			t.Errorf("unexpected registration token %q (a hidden internal token?)", r.Name)
		}
	}
	cid := randHex(16)
	idFile("entitled", cid)
	mustRun(t, nil, "client", d.clientArgs("enable", "entitled", d.a.URL, "--contract", "--contracts-url", d.contracts.URL, d.contractT)...)
	// Re-enabling with saved state rotates through the contract path too.
	mustRun(t, nil, "client", d.clientArgs("enable", "entitled", d.a.URL, "--contract", "--contracts-url", d.contracts.URL, d.contractT)...)
	live := 0
	for _, m := range mustList(t, ctx, admin, "machines") {
		if m.Machine != "" && m.Issuer == "entitlement-service" && !m.Revoked {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d live entitled machines, want 1", live)
	}
	logs := d.a.stderr.String()
	if !strings.Contains(logs, `"event":"token_machine_taken"`) || !strings.Contains(logs, `"event":"token_machine_released"`) {
		t.Error("no token_machine_taken / token_machine_released events in the log")
	}
	for _, s := range []string{fleet.Token, oneUse.Token, vtok, got.MachineToken, key, d.contractT} {
		if strings.Contains(logs, s) {
			t.Error("a secret appears in the log")
		}
	}
}

func mustList(t *testing.T, ctx context.Context, admin *client.Admin, kind string) []api.TokenInfo {
	t.Helper()
	l, err := admin.ListTokens(ctx, kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRotationsOverTheWire: one machine re-enabled (rotated) many times
// through the server leaves the server's memory, the machine list and (on
// PostgreSQL) the machine table bounded (issue 14: 300,000
// re-registrations grew the server from 161 MB to 778 MB and the admin
// list to 74.5 MB). LPSEC_WIRE_ROTATIONS sets the count (default 300;
// bench/register.sh runs 300,000). The figures are logged.
func TestRotationsOverTheWireMemory(t *testing.T) {
	t.Parallel()
	runRotations(t, "")
}

func TestRotationsOverTheWirePostgres(t *testing.T) {
	t.Parallel()
	runRotations(t, pgtest.Database(t))
}

func rssKB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc to read the server's memory: %v", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}

func runRotations(t *testing.T, db string) {
	n := 300
	if v := os.Getenv("LPSEC_WIRE_ROTATIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LPSEC_WIRE_ROTATIONS=%q", v)
		}
	}
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	d := &deployment{dir: t.TempDir(), reportKey: "k1:" + randHex(32), kek: randB64(32), db: db}
	d.a = start(t, d.serverEnv(f), "server", serverArgs(f, filepath.Join(d.dir, "server"))...)
	admin, err := client.NewAdmin(d.a.URL, d.a.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	fleet, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "fleet", Uses: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := wire{t: t, ctx: ctx, url: d.a.URL, hc: admin.HTTP()}
	machine := randHex(16)
	code, e, rr := w.register(machine, http.Header{"Authorization": {"Bearer " + fleet.Token}})
	if code != 200 {
		t.Fatalf("enable: %d %+v", code, e)
	}
	cur := rr.MachineToken
	rotate := func() {
		code, e, rr := w.register(machine, http.Header{"Authorization": {"Bearer " + fleet.Token}, api.HeaderCurrentToken: {cur}})
		if code != 200 {
			t.Fatalf("rotation: %d %+v", code, e)
		}
		cur = rr.MachineToken
	}
	listBytes := func() (int, int) {
		ms := mustList(t, ctx, admin, "machines")
		js, _ := json.Marshal(ms)
		return len(ms), len(js)
	}
	for range 10 {
		rotate()
	}
	recs0, list0 := listBytes()
	rss0 := rssKB(t, d.a.cmd.Process.Pid)
	start := time.Now()
	for range n {
		rotate()
	}
	took := time.Since(start)
	recs, list := listBytes()
	rss := rssKB(t, d.a.cmd.Process.Pid)
	t.Logf("wire bounded (%s): %d rotations in %v (%.0f/s); machine records %d -> %d; admin list %d -> %d bytes; server RSS %d -> %d kB",
		map[bool]string{true: "postgresql", false: "memory"}[db != ""], n, took.Round(time.Millisecond), float64(n)/took.Seconds(),
		recs0, recs, list0, list, rss0, rss)
	if recs != recs0 || recs > 5 || list > list0+64 {
		t.Fatalf("state grew: %d -> %d records, list %d -> %d bytes", recs0, recs, list0, list)
	}
	if !w.tokenWorks(machine, cur) {
		t.Fatal("the last token does not work")
	}
}
