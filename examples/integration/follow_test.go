package integration

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/internal/pgnotify/pgnotifytest"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// TestFollowAcrossInstances (PostgreSQL): two servers on one database, B
// with both caches at their longest (1m), so that only a notification can
// explain a prompt refusal on B. What A revokes, a machine token or an
// admin session, B refuses within seconds; the auth-token listing on B
// follows A's changes; a revocation that no notification announced (the
// triggers disabled, standing for one lost in a gap) is refused by B once
// its notifications broke and came back, because B trusts nothing it
// cached before the gap. Nothing else changes: the other machine and the
// other session stay accepted on B.
func TestFollowAcrossInstances(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Database(t)
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	env := []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_DATABASE_URL=" + dbURL,
		"LPSEC_SERVER_ROOT_KEY_KEK=" + randB64(32), "LPSEC_SERVER_LOG_LEVEL=info"}
	a := start(t, env, "server", serverArgs(f, filepath.Join(dir, "a"))...)
	b := start(t, env, "server", append(serverArgs(f, filepath.Join(dir, "b")),
		"--token-cache-ttl", "1m", "--revocation-cache-ttl", "1m")...)
	b.waitStderr(t, `"event":"pgnotify_live","channel":"lpsec_token_changed"`)
	b.waitStderr(t, `"event":"pgnotify_live","channel":"lpsec_macaroon_revoked"`)
	ca := bundle(t, dir, a.line(t, `CA in (\S+) \(`), b.line(t, `CA in (\S+) \(`))
	adminOn := func(d *daemon) *client.Admin {
		ad, err := client.NewAdmin(d.URL, ca)
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	adminA, adminB := adminOn(a), adminOn(b)
	if _, err := adminA.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	adminB.Authorization = adminA.Authorization
	wa := wire{t: t, ctx: ctx, url: a.URL, hc: adminA.HTTP(), admin: adminA.Authorization}
	wb := wire{t: t, ctx: ctx, url: b.URL, hc: adminB.HTTP(), admin: adminA.Authorization}
	// within polls B until ok holds; the bound is far below B's 1m caches.
	const bound = 20 * time.Second
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > bound {
				t.Fatalf("%s: not seen on B within %v (B caches for 1m: only a notification could be this quick)", what, bound)
			}
			time.Sleep(5 * time.Millisecond) // polling another process
		}
		t.Logf("%s: seen on B after %v", what, time.Since(start))
	}
	listedOnB := func(id string, revoked bool) bool {
		l, err := adminB.ListTokens(ctx, "auth-tokens")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l {
			if r.ID == id {
				return r.Revoked == revoked
			}
		}
		return false
	}

	// Registration tokens issued and revoked on A: B's listing (kept in
	// memory) follows.
	if _, err := adminB.ListTokens(ctx, "auth-tokens"); err != nil { // B keeps its copy from here
		t.Fatal(err)
	}
	fleet, err := adminA.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "fleet", Uses: 10})
	if err != nil {
		t.Fatal(err)
	}
	within("a registration token issued on A", func() bool { return listedOnB(fleet.ID, false) })
	spare, err := adminA.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "spare"})
	if err != nil {
		t.Fatal(err)
	}
	if err := adminA.Revoke(ctx, "auth-tokens", spare.ID); err != nil {
		t.Fatal(err)
	}
	within("a registration token revoked on A", func() bool { return listedOnB(spare.ID, true) })

	// Two machines registered on A, both cached by B.
	bearer := http.Header{"Authorization": {"Bearer " + fleet.Token}}
	m1, m2, m3 := randHex(16), randHex(16), randHex(16)
	tokens := map[string]string{}
	for _, m := range []string{m1, m2, m3} {
		code, e, rr := wa.register(m, bearer)
		if code != http.StatusOK {
			t.Fatalf("register %s on A: %d %+v", m, code, e)
		}
		tokens[m] = rr.MachineToken
		if !wb.tokenWorks(m, rr.MachineToken) {
			t.Fatalf("machine %s's token refused on B", m)
		}
	}
	machineID := func(machine string) string {
		t.Helper()
		ms, err := adminA.ListTokens(ctx, "machines")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Machine == machine && !m.Revoked {
				return m.ID
			}
		}
		t.Fatalf("no live token for %s", machine)
		return ""
	}
	if err := adminA.Revoke(ctx, "machines", machineID(m1)); err != nil {
		t.Fatal(err)
	}
	within("a machine token revoked on A", func() bool { return !wb.tokenWorks(m1, tokens[m1]) })
	if !wb.tokenWorks(m2, tokens[m2]) || !wb.tokenWorks(m3, tokens[m3]) {
		t.Fatal("B refuses the machines A did not revoke")
	}

	// An admin session used on B (B's revocation snapshot is loaded),
	// logged out on A.
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
	within("a session logged out on A", func() bool {
		_, err := onB.ListTokens(ctx, "machines")
		var se *client.ServerError
		return errors.As(err, &se) && se.Status == http.StatusUnauthorized
	})
	if _, err := adminB.ListTokens(ctx, "machines"); err != nil {
		t.Fatalf("the first session on B after the other's logout: %v", err)
	}

	// A gap in B's notifications: every follower connection is closed by
	// the server. A revocation committed with the triggers off (nobody is
	// notified) is then refused by B at once, live or not: records cached
	// before a gap are never trusted again.
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const tokenLost = `"event":"pgnotify_lost","channel":"lpsec_token_changed"`
	lostBefore := strings.Count(b.stderr.String(), tokenLost)
	if n := pgnotifytest.TerminateFollowers(t, db); n < 2 {
		t.Fatalf("closed %d follower connections; want 4 (two per server)", n)
	}
	deadline := time.Now().Add(bound)
	for strings.Count(b.stderr.String(), tokenLost) == lostBefore {
		if time.Now().After(deadline) {
			t.Fatalf("B did not notice its notifications stop within %v:\n%s", bound, b.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling a log
	}
	pgnotifytest.Quietly(t, db, "lpsec_token_machine",
		`UPDATE lpsec_token_machine SET revoked = true, revoked_at = now() WHERE machine = '`+m2+`' AND NOT revoked`)
	if wb.tokenWorks(m2, tokens[m2]) {
		t.Fatal("B accepted a token revoked during a gap in its notifications")
	}
	if !wb.tokenWorks(m3, tokens[m3]) {
		t.Fatal("B refuses the machine nobody revoked")
	}
	// And B follows again by itself.
	deadline = time.Now().Add(bound)
	for strings.Count(b.stderr.String(), `"event":"pgnotify_live"`) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("B did not follow again within %v:\n%s", bound, b.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling a log
	}
}
