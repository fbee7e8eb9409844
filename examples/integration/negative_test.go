package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// forge re-mints the macaroon in authz under a random root key: same id,
// same caveats, wrong signature.
func forge(t *testing.T, authz string) string {
	t.Helper()
	ms, err := lpmac.DecodeSlice(strings.TrimPrefix(authz, "Macaroon "))
	if err != nil {
		t.Fatal(err)
	}
	orig := ms[0]
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	m, err := macaroon.New(key, orig.Id(), orig.Location(), orig.Version())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range orig.Caveats() {
		if err := m.AddFirstPartyCaveat(c.Id); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := lpmac.EncodeSlice(macaroon.Slice{m})
	if err != nil {
		t.Fatal(err)
	}
	return "Macaroon " + enc
}

// TestNegative sends hostile requests over TLS to a running server: each
// gets the exact refusal its case names (a clean 4xx, or ServeMux's
// same-server redirect for a non-canonical path; never a 5xx, never
// success), and the server still serves afterwards.
func TestNegative(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	contractsD := start(t, nil, "contracts", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "contracts"), "--contract-tokens", "contract-"+randHex(8))
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_REPORT_KEY=k1:" + randHex(32)}, "server",
		append(serverArgs(f, filepath.Join(dir, "server")), "--max-patch-size", "1048576",
			"--contracts-url", contractsD.URL, "--contracts-public-key", contractsD.line(t, `public key (\S+) `))...)
	admin, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	reg, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "n", Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "revoked", Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Revoke(ctx, "auth-tokens", revoked.ID); err != nil {
		t.Fatal(err)
	}
	machine1, machine2 := strings.Repeat("1", 32), strings.Repeat("2", 32)
	register := func(m string) string {
		var rr api.RegisterResponse
		if err := admin.Do(ctx, http.MethodPut, "/v1/client/"+m, http.Header{"Authorization": {"Bearer " + reg.Token}}, nil, &rr); err != nil {
			t.Fatal(err)
		}
		return rr.MachineToken
	}
	mt1 := register(machine1)
	register(machine2)
	syncTok, err := admin.IssueToken(ctx, "sync-tokens", api.IssueTokenRequest{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	randMac := func() string {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		m, _ := macaroon.New(key, []byte("AwoQ"+randHex(20)), "x", macaroon.V2)
		enc, _ := lpmac.EncodeSlice(macaroon.Slice{m})
		return "Macaroon " + enc
	}
	bigJSON := `{"name":"` + strings.Repeat("a", 100<<10) + `"}`
	tokens := "/v1/admin/auth-tokens"

	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string][]string
		body   string
		want   int // the exact status: a refusal for another reason must not pass
	}{
		{"login wrong password", "POST", "/v1/admin/login", map[string][]string{"Authorization": {basic("alice", "wrong")}}, "", 401},
		{"login unknown user", "POST", "/v1/admin/login", map[string][]string{"Authorization": {basic("mallory", f.password)}}, "", 401},
		{"login no credentials", "POST", "/v1/admin/login", nil, "", 401},
		{"login two Authorization headers", "POST", "/v1/admin/login", map[string][]string{"Authorization": {basic("alice", f.password), basic("alice", f.password)}}, "", 401},
		{"login base64 garbage", "POST", "/v1/admin/login", map[string][]string{"Authorization": {"Basic !!!not-base64!!!"}}, "", 401},
		{"login without colon", "POST", "/v1/admin/login", map[string][]string{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}}, "", 401},
		{"login control characters", "POST", "/v1/admin/login", map[string][]string{"Authorization": {basic("al\x01ice", f.password)}}, "", 401},
		{"login oversized header", "POST", "/v1/admin/login", map[string][]string{"Authorization": {"Basic " + strings.Repeat("A", 20000)}}, "", 401},
		{"headers over the server bound", "GET", "/healthz", map[string][]string{"X-Big": {strings.Repeat("b", 70000)}}, "", 431},
		{"admin without macaroon", "GET", tokens, nil, "", 401},
		{"admin with Basic instead of macaroon", "GET", tokens, map[string][]string{"Authorization": {basic("alice", f.password)}}, "", 401},
		{"macaroon not base64", "GET", tokens, map[string][]string{"Authorization": {"Macaroon %%%"}}, "", 400},
		{"macaroon base64 of junk", "GET", tokens, map[string][]string{"Authorization": {"Macaroon " + base64.StdEncoding.EncodeToString([]byte("[{\"junk\":1}]"))}}, "", 400},
		{"macaroon oversized", "GET", tokens, map[string][]string{"Authorization": {"Macaroon " + strings.Repeat("A", 20000)}}, "", 400},
		{"macaroon Macaroons header junk", "GET", tokens, map[string][]string{"Macaroons": {"eyJ4Ijox"}}, "", 400},
		{"macaroon forged signature", "GET", tokens, map[string][]string{"Authorization": {forge(t, admin.Authorization)}}, "", 403},
		{"macaroon made-up id", "GET", tokens, map[string][]string{"Authorization": {randMac()}}, "", 400},
		// One Authorization header, read with the same rules by auth, token
		// and macaroon (internal/authheader): a second one is refused even
		// when the first is a valid macaroon, so a proxy and the server can
		// never disagree about which credentials counted.
		{"macaroon beside a Basic header", "GET", tokens, map[string][]string{"Authorization": {admin.Authorization, basic("alice", f.password)}}, "", 400},
		{"two valid macaroon headers", "GET", tokens, map[string][]string{"Authorization": {admin.Authorization, admin.Authorization}}, "", 400},
		{"issue token with a smuggled second header", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization, basic("mallory", "x")}}, `{"name":"smuggled"}`, 400},
		{"macaroon scheme then two credentials", "GET", tokens, map[string][]string{"Authorization": {admin.Authorization + " " + strings.TrimPrefix(admin.Authorization, "Macaroon ")}}, "", 400},
		{"machine token beside a registration token", "GET", "/v1/client/" + machine1 + "/patches?kernel=x", map[string][]string{"Authorization": {"Bearer " + mt1, "Bearer " + reg.Token}}, "", 401},
		{"machine token as admin macaroon", "GET", tokens, map[string][]string{"Authorization": {"Bearer " + mt1}}, "", 401},
		{"register unknown token", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {"Bearer 0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b"}}, "", 401},
		{"register non-UUID token", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {"Bearer not-a-token"}}, "", 401},
		{"register braced UUID", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {"Bearer {" + reg.Token + "}"}}, "", 401},
		{"register revoked token", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {"Bearer " + revoked.Token}}, "", 401},
		{"register machine token", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {"Bearer " + mt1}}, "", 401},
		{"register crafted macaroon", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {randMac()}}, "", 400},
		{"register admin macaroon", "PUT", "/v1/client/" + machine1, map[string][]string{"Authorization": {admin.Authorization}}, "", 403},
		{"register bad machine name", "PUT", "/v1/client/..%2f..%2fetc", map[string][]string{"Authorization": {"Bearer " + reg.Token}}, "", 400},
		{"register raw-looking uppercase machine", "PUT", "/v1/client/" + strings.Repeat("A", 32), map[string][]string{"Authorization": {"Bearer " + reg.Token}}, "", 400},
		{"patches wrong token", "GET", "/v1/client/" + machine1 + "/patches?kernel=x", map[string][]string{"Authorization": {"Bearer 0b5ad2b8-7d1c-4f0e-9a3c-0c1d2e3f4a5b"}}, "", 401},
		{"patches registration token", "GET", "/v1/client/" + machine1 + "/patches?kernel=x", map[string][]string{"Authorization": {"Bearer " + reg.Token}}, "", 401},
		{"patches another machine's token", "GET", "/v1/client/" + machine2 + "/patches?kernel=x", map[string][]string{"Authorization": {"Bearer " + mt1}}, "", 403},
		{"patches without kernel", "GET", "/v1/client/" + machine1 + "/patches", map[string][]string{"Authorization": {"Bearer " + mt1}}, "", 400},
		{"sync with machine token", "GET", "/v1/sync/patches", map[string][]string{"Authorization": {"Bearer " + mt1}}, "", 401},
		{"sync with sync token id", "GET", "/v1/sync/patches", map[string][]string{"Authorization": {"Bearer " + syncTok.ID}}, "", 401},
		{"oversized JSON body", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, bigJSON, 413},
		{"malformed JSON body", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, `{"name":`, 400},
		{"unknown JSON field", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, `{"name":"x","tier":"gold"}`, 400},
		{"trailing JSON", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, `{"name":"x"}{"name":"y"}`, 400},
		{"wrong content type", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}, "Content-Type": {"text/plain"}}, `{"name":"x"}`, 415},
		{"token with control characters", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, `{"name":"a\u0000b"}`, 400},
		{"negative uses", "POST", tokens, map[string][]string{"Authorization": {admin.Authorization}}, `{"name":"x","uses":-5}`, 400},
		{"revoke malformed id", "DELETE", tokens + "/zzz", map[string][]string{"Authorization": {admin.Authorization}}, "", 404},
		{"upload over --max-patch-size", "POST", "/v1/admin/patches", map[string][]string{"Authorization": {admin.Authorization}}, strings.Repeat("x", 1100000), 413},
		{"upload not a tarball", "POST", "/v1/admin/patches", map[string][]string{"Authorization": {admin.Authorization}}, "BZh9 not really", 422},
		{"upload path in filename", "POST", "/v1/admin/patches?filename=../x.tar", map[string][]string{"Authorization": {admin.Authorization}}, "x", 400},
		{"report oversized", "POST", "/v1/client/" + machine1 + "/report", map[string][]string{"Authorization": {"Bearer " + mt1}}, `{"x":"` + strings.Repeat("a", 40000) + `"}`, 413},
		{"report unknown field", "POST", "/v1/client/" + machine1 + "/report", map[string][]string{"Authorization": {"Bearer " + mt1}}, `{"raw_machine_id":"0123"}`, 400},
		{"report raw machine ID", "POST", "/v1/client/" + machine1 + "/report", map[string][]string{"Authorization": {"Bearer " + mt1}},
			`{"architecture":"x86_64","cpu_model":"","kernel_version":"6.1.0","machine_id":"` + strings.Repeat("ab", 16) + `","patch_version":"","patch_state":"applied","client_version":"x"}`, 400},
		{"download traversal", "GET", "/v1/patches/..%2f..%2fetc%2fpasswd", nil, "", 404},
		{"download unknown", "GET", "/v1/patches/livepatch-none.tar.bz2", nil, "", 404},
		// ServeMux answers a non-canonical path with a redirect to the
		// cleaned one on the same server, where nothing is served.
		{"dot-dot route", "GET", "/v1/admin/../../etc", nil, "", 307},
		{"unknown route", "GET", "/etc", nil, "", 404},
		{"method not allowed", "PATCH", "/v1/admin/login", nil, "", 405},
	}
	hc := admin.HTTP()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			hc := *hc
			hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tc.want, body)
			}
			if loc := resp.Header.Get("Location"); loc != "" && strings.Contains(loc, "//") {
				t.Errorf("redirected off the server: %q", loc)
			}
			for _, secret := range []string{f.password, reg.Token, mt1} {
				if strings.Contains(string(body), secret) {
					t.Errorf("the answer echoes a secret")
				}
			}
		})
	}
	// A refused report answers 400 with report.FieldError's message, which
	// says which field and why, and stores nothing.
	hashed := "k1:" + strings.Repeat("ab", 32)
	for _, rc := range []struct{ name, body, msg string }{
		{"unknown field", `{"raw_machine_id":"0123"}`, `report: invalid report: unknown field "raw_machine_id"`},
		{"raw machine ID", `{"machine_id":"` + strings.Repeat("ab", 16) + `","patch_state":"applied"}`,
			"report: invalid report: field machine_id: invalid hashed machine ID: want <key ID>:<64 hexadecimal characters>"},
		{"log injection", `{"machine_id":"` + hashed + `","patch_state":"applied","client_version":"1\nevent=admin_login"}`,
			"report: invalid report: field client_version: control or invalid character at byte 1"},
		{"missing state", `{"machine_id":"` + hashed + `"}`, "report: invalid report: field patch_state: missing"},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/client/"+machine1+"/report", strings.NewReader(rc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+mt1)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		derr := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || derr != nil || e.Code != "bad_report" || e.Message != rc.msg {
			t.Errorf("report %s: %d %+v (%v), want 400 bad_report %q", rc.name, resp.StatusCode, e, derr, rc.msg)
		}
	}
	if reports, err := admin.Reports(ctx); err != nil || len(reports) != 0 {
		t.Errorf("after refused reports: %d stored, %v", len(reports), err)
	}
	// Still serving, and still correct.
	if _, err := admin.Get(ctx, "/healthz"); err != nil {
		t.Fatalf("healthz after the hostile requests: %v", err)
	}
	list, err := admin.ListTokens(ctx, "auth-tokens")
	if err != nil {
		t.Fatalf("admin after the hostile requests: %v", err)
	}
	for _, tok := range list {
		if tok.Name == "smuggled" {
			t.Fatal("a request with two Authorization headers issued a token")
		}
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatalf("login after the hostile requests: %v", err)
	}
}
