package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Admin sessions that end (issue 14 item 4), over the wire against the
// real server binary: on the memory store with one server, and on
// PostgreSQL with two servers sharing the database, where every refusal
// is checked on both.
func TestSessionsMemory(t *testing.T) {
	t.Parallel()
	runSessions(t, "")
}

func TestSessionsPostgres(t *testing.T) {
	t.Parallel()
	runSessions(t, pgtest.Database(t))
}

// call sends one request and returns the status and the error code of
// the JSON body (if any).
func call(t *testing.T, hc *http.Client, method, url, authz, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e.Code
}

// attenuate appends first-party caveats to the macaroon of an
// Authorization header, as any holder can.
func attenuate(t *testing.T, authz string, cavs ...string) string {
	t.Helper()
	ms, err := lpmac.DecodeSlice(strings.TrimPrefix(authz, "Macaroon "))
	if err != nil {
		t.Fatal(err)
	}
	m := ms[0].Clone()
	for _, c := range cavs {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return "Macaroon " + base64RawURL(bin)
}

func runSessions(t *testing.T, db string) {
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	bobPW := randHex(10)
	bobHash, err := auth.HashPassword(bobPW, auth.HashBcrypt(10))
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "admins.htpasswd")
	writeUsers := func(lines ...string) {
		t.Helper()
		// Write then rename, as an editor or config tool would.
		tmp := usersFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, usersFile); err != nil {
			t.Fatal(err)
		}
	}
	writeUsers(f.userSpec, "bob:"+bobHash)
	env := []string{"LPSEC_SERVER_ADMIN_USERS_FILE=" + usersFile}
	if db != "" {
		env = append(env, "LPSEC_SERVER_DATABASE_URL="+db, "LPSEC_SERVER_ROOT_KEY_KEK="+randB64(32))
	}
	var servers []*daemon
	servers = append(servers, start(t, env, "server", serverArgs(f, filepath.Join(dir, "a"))...))
	if db != "" {
		servers = append(servers, start(t, env, "server", serverArgs(f, filepath.Join(dir, "b"))...))
	}
	var bundleFiles []string
	for _, s := range servers {
		bundleFiles = append(bundleFiles, s.line(t, `CA in (\S+) \(`))
	}
	ca := bundle(t, dir, bundleFiles...)
	admin := func(s *daemon) *client.Admin {
		a, err := client.NewAdmin(s.URL, ca)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := admin(servers[0])
	hc := a.HTTP()
	login := func(user, pw string) *api.LoginResponse {
		t.Helper()
		lr, err := admin(servers[len(servers)-1]).Login(ctx, user, pw)
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return lr
	}
	// want checks one request on every server.
	want := func(what, method, path, authz, body string, status int, code string) {
		t.Helper()
		for i, s := range servers {
			got, gotCode := call(t, hc, method, s.URL+path, authz, body)
			if got != status || gotCode != code {
				t.Errorf("%s on server %d: %d %q, want %d %q", what, i, got, gotCode, status, code)
			}
		}
	}
	tokenCount := func(authz string) int {
		t.Helper()
		var out struct {
			Tokens []api.TokenInfo `json:"tokens"`
		}
		a := admin(servers[0])
		a.Authorization = authz
		if err := a.Do(ctx, http.MethodGet, "/v1/admin/auth-tokens", nil, nil, &out); err != nil {
			t.Fatalf("listing tokens: %v", err)
		}
		return len(out.Tokens)
	}
	const list, create = "/v1/admin/auth-tokens", "/v1/admin/auth-tokens"

	alice1, alice2, bob := login("alice", f.password), login("alice", f.password), login("bob", bobPW)
	want("fresh login", "GET", list, alice1.Header, "", 200, "")
	tokens := tokenCount(alice2.Header)

	// Attenuation: narrowed to listing, the macaroon lists and is refused
	// for creating tokens (and for logging out the macaroon it came from).
	narrowed := attenuate(t, alice1.Header, "allow "+api.OpAuthTokensList)
	want("narrowed: allowed op", "GET", list, narrowed, "", 200, "")
	want("narrowed: other op", "POST", create, narrowed, `{"name":"x"}`, 403, "denied")
	want("narrowed: logout", "POST", "/v1/admin/logout", narrowed, "", 403, "denied")
	want("narrowed: deny caveat", "GET", list, attenuate(t, alice1.Header, "deny "+api.OpAuthTokensList), "", 403, "denied")
	want("narrowed: allow cannot widen", "POST", create, attenuate(t, narrowed, "allow "+api.OpAuthTokensCreate), `{"name":"x"}`, 403, "denied")
	want("narrowed: appended issued-at", "GET", list, attenuate(t, alice1.Header, "issued-at 2099-01-01T00:00:00Z"), "", 403, "denied")
	if n := tokenCount(alice2.Header); n != tokens {
		t.Fatalf("refused creations changed the token list: %d, want %d", n, tokens)
	}

	// Logout on server a: the macaroon and its attenuations are refused on
	// every server; the same user's other session is untouched.
	if st, code := call(t, hc, "POST", servers[0].URL+"/v1/admin/logout", alice1.Header, ""); st != 204 {
		t.Fatalf("logout: %d %q", st, code)
	}
	want("after logout", "GET", list, alice1.Header, "", 401, "revoked")
	want("after logout: creating", "POST", create, alice1.Header, `{"name":"x"}`, 401, "revoked")
	want("after logout: attenuation", "GET", list, narrowed, "", 401, "revoked")
	want("after logout: other session", "GET", list, alice2.Header, "", 200, "")

	// Revoke by id (the session_id login showed).
	ids := login("alice", f.password)
	if st, code := call(t, hc, "POST", servers[0].URL+"/v1/admin/revocations", alice2.Header, `{"id":"`+ids.SessionID+`"}`); st != 200 {
		t.Fatalf("revoke id: %d %q", st, code)
	}
	want("revoked id", "GET", list, ids.Header, "", 401, "revoked")

	// Revoke every login of bob: his macaroon is refused everywhere, his
	// new login works, alice's session is untouched.
	want("bob before", "GET", list, bob.Header, "", 200, "")
	if st, code := call(t, hc, "POST", servers[0].URL+"/v1/admin/revocations", alice2.Header, `{"user":"bob"}`); st != 200 {
		t.Fatalf("revoke user: %d %q", st, code)
	}
	want("bob after revoke-user", "GET", list, bob.Header, "", 401, "revoked")
	want("alice after bob's revocation", "GET", list, alice2.Header, "", 200, "")
	bob2 := login("bob", bobPW)
	want("bob's new login", "GET", list, bob2.Header, "", 200, "")

	// Hostile revocation requests: each refused exactly, nothing changes.
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed id", `{"id":"zz"}`, 400, "invalid"},
		{"upper-case id", `{"id":"` + strings.ToUpper(ids.SessionID) + `"}`, 400, "invalid"},
		{"id with before", `{"id":"` + ids.SessionID + `","before":"2026-01-01T00:00:00Z"}`, 400, "invalid"},
		{"two scopes", `{"user":"bob","all":true}`, 400, "invalid"},
		{"no scope", `{}`, 400, "invalid"},
		{"unknown field", `{"username":"bob"}`, 400, "bad_request"},
		{"control character user", `{"user":"b\u0001ob"}`, 400, "invalid"},
		{"oversized user", `{"user":"` + strings.Repeat("b", 300) + `"}`, 400, "invalid"},
		{"oversized body", `{"user":"` + strings.Repeat("b", 2000) + `"}`, 413, "too_large"},
		{"bad time", `{"all":true,"before":"yesterday"}`, 400, "invalid"},
		{"zero time", `{"all":true,"before":"0001-01-01T00:00:00Z"}`, 400, "invalid"},
		{"future cut-off", `{"all":true,"before":"2099-01-01T00:00:00Z"}`, 400, "invalid"},
		{"trailing data", `{"all":true}{"all":true}`, 400, "bad_request"},
		{"not JSON", `all`, 400, "bad_request"},
	} {
		if st, code := call(t, hc, "POST", servers[0].URL+"/v1/admin/revocations", alice2.Header, c.body); st != c.status || code != c.code {
			t.Errorf("revocations %s: %d %q, want %d %q", c.name, st, code, c.status, c.code)
		}
	}
	want("after hostile revocations: alice", "GET", list, alice2.Header, "", 200, "")
	want("after hostile revocations: bob", "GET", list, bob2.Header, "", 200, "")
	want("logout without a macaroon", "POST", "/v1/admin/logout", "", "", 401, "unauthorized")

	// Alice removed from the file: her existing macaroon is refused at
	// the next request on every server (each notices the edit), and she
	// cannot log in; bob is untouched and the token list did not change.
	writeUsers("bob:" + bobHash)
	want("removed user's macaroon", "GET", list, alice2.Header, "", 403, "user_refused")
	want("removed user creating", "POST", create, alice2.Header, `{"name":"x"}`, 403, "user_refused")
	for i, s := range servers {
		if _, err := admin(s).Login(ctx, "alice", f.password); err == nil {
			t.Errorf("server %d: removed user logged in", i)
		} else if se := (*client.ServerError)(nil); !asServerError(err, &se) || se.Status != 401 {
			t.Errorf("server %d: removed user's login: %v, want 401", i, err)
		}
	}
	want("bob after alice's removal", "GET", list, bob2.Header, "", 200, "")
	// Re-adding the name does not revive her old macaroon: the removal
	// revoked her logins.
	writeUsers(f.userSpec, "bob:"+bobHash)
	want("re-added user's old macaroon", "GET", list, alice2.Header, "", 401, "revoked")
	want("re-added user's new login", "GET", list, login("alice", f.password).Header, "", 200, "")
	if n := tokenCount(bob2.Header); n != tokens {
		t.Fatalf("token list changed: %d, want %d", n, tokens)
	}

	// Revoke everyone: every session ends, a new login works.
	if st, code := call(t, hc, "POST", servers[len(servers)-1].URL+"/v1/admin/revocations", bob2.Header, `{"all":true}`); st != 200 {
		t.Fatalf("revoke all: %d %q", st, code)
	}
	want("after revoke-all", "GET", list, bob2.Header, "", 401, "revoked")
	want("new login after revoke-all", "GET", list, login("bob", bobPW).Header, "", 200, "")
}

func base64RawURL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// SIGHUP re-reads --admin-users-file even when the edit left its size and
// modification time as they were (so only the signal can have done it):
// the removed user's macaroon is refused at the next request.
func TestSessionsSIGHUP(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	bobHash, err := auth.HashPassword("bob-password", auth.HashBcrypt(10))
	if err != nil {
		t.Fatal(err)
	}
	eveHash, err := auth.HashPassword("eve-password", auth.HashBcrypt(10))
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "admins.htpasswd")
	if err := os.WriteFile(usersFile, []byte(f.userSpec+"\nbob:"+bobHash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, []string{"LPSEC_SERVER_ADMIN_USERS_FILE=" + usersFile}, "server", serverArgs(f, filepath.Join(dir, "server"))...)
	a, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := a.Login(ctx, "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	list := srv.URL + "/v1/admin/auth-tokens"
	if code, _ := call(t, a.HTTP(), "GET", list, bob.Header, ""); code != 200 {
		t.Fatalf("bob before: %d", code)
	}
	// bob -> eve: same length, same modification time.
	if err := os.WriteFile(usersFile, []byte(f.userSpec+"\neve:"+eveHash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(usersFile, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(usersFile); st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("could not keep size and mtime: %v %v", st2.Size(), st2.ModTime())
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The server logs the reload; wait for that event, not for a time.
	for !strings.Contains(srv.stderr.String(), `"event":"admin_users_reloaded"`) {
		select {
		case <-ctx.Done():
			t.Fatalf("no admin_users_reloaded event after SIGHUP\n%s", srv.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if code, errCode := call(t, a.HTTP(), "GET", list, bob.Header, ""); code != 403 || errCode != "user_refused" {
		t.Fatalf("removed bob after SIGHUP: %d %q, want 403 user_refused", code, errCode)
	}
	if _, err := a.Login(ctx, "eve", "eve-password"); err != nil {
		t.Fatalf("added eve after SIGHUP: %v", err)
	}
}
