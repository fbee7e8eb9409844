package integration

import (
	"context"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/ident"
	"github.com/lpsec/lpsec/internal/pgtest"
)

// Reports only for oneself (issue 14 item 6), over the wire: a machine
// token cannot file a report carrying another machine's hashed ID (403,
// nothing stored), nor one hashing its raw machine ID; its own is accepted.
func TestReportsOwnMachineMemory(t *testing.T) {
	t.Parallel()
	runReportsOwnMachine(t, "")
}

func TestReportsOwnMachinePostgres(t *testing.T) {
	t.Parallel()
	runReportsOwnMachine(t, pgtest.Database(t))
}

func runReportsOwnMachine(t *testing.T, db string) {
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	reportKey := "k1:" + randHex(32)
	env := []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec, "LPSEC_SERVER_REPORT_KEY=" + reportKey}
	if db != "" {
		env = append(env, "LPSEC_SERVER_DATABASE_URL="+db, "LPSEC_SERVER_ROOT_KEY_KEK="+randB64(32))
	}
	srv := start(t, env, "server", serverArgs(f, filepath.Join(dir, "server"))...)
	admin, err := client.NewAdmin(srv.URL, srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Login(ctx, "alice", f.password); err != nil {
		t.Fatal(err)
	}
	reg, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "fleet", Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ident.ParseReportKeys(reportKey)
	if err != nil {
		t.Fatal(err)
	}
	type machine struct {
		raw   [16]byte
		name  string
		token string
	}
	newMachine := func(b byte) machine {
		var m machine
		for i := range m.raw {
			m.raw[i] = b + byte(i)
		}
		app, err := ident.AppSpecific(m.raw)
		if err != nil {
			t.Fatal(err)
		}
		m.name = hex.EncodeToString(app[:])
		var rr api.RegisterResponse
		if err := admin.Do(ctx, http.MethodPut, "/v1/client/"+m.name, http.Header{"Authorization": {"Bearer " + reg.Token}}, nil, &rr); err != nil {
			t.Fatal(err)
		}
		m.token = rr.MachineToken
		return m
	}
	victim, attacker := newMachine(0x10), newMachine(0x80)
	hashOf := func(m machine) string {
		app, _ := ident.AppSpecific(m.raw)
		return h.Hash(app).String()
	}
	body := func(machineID string) string {
		return `{"architecture":"x86_64","cpu_model":"","kernel_version":"6.1.0","machine_id":"` + machineID +
			`","patch_version":"","patch_state":"applied","client_version":"x"}`
	}
	send := func(m machine, machineID string) (int, string) {
		return call(t, admin.HTTP(), "POST", srv.URL+"/v1/client/"+m.name+"/report", "Bearer "+m.token, body(machineID))
	}
	reports := func() []api.StoredReport {
		t.Helper()
		list, err := admin.Reports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	if st, code := send(victim, hashOf(victim)); st != 204 {
		t.Fatalf("victim's own report: %d %q", st, code)
	}
	before := reports()
	if len(before) != 1 || before[0].Machine != victim.name {
		t.Fatalf("reports after the victim's: %+v", before)
	}
	for _, c := range []struct {
		name, machineID string
	}{
		{"another machine's hashed ID", hashOf(victim)},
		{"hash of the raw machine ID", h.Hash(attacker.raw).String()},
	} {
		if st, code := send(attacker, c.machineID); st != 403 || code != "not_own_machine" {
			t.Errorf("%s: %d %q, want 403 not_own_machine", c.name, st, code)
		}
	}
	// Through the victim's path with the attacker's token: the token check.
	if st, code := call(t, admin.HTTP(), "POST", srv.URL+"/v1/client/"+victim.name+"/report", "Bearer "+attacker.token, body(hashOf(victim))); st != 403 || code != "forbidden" {
		t.Errorf("report on the victim's path: %d %q, want 403 forbidden", st, code)
	}
	after := reports()
	if len(after) != 1 || after[0].Machine != victim.name || !after[0].Received.Equal(before[0].Received) || string(after[0].Report) != string(before[0].Report) {
		var got []string
		for _, r := range after {
			got = append(got, r.Machine+" at "+r.Received.String())
		}
		t.Fatalf("refused reports changed what is stored: %q, want only %s at %v", got, before[0].Machine, before[0].Received)
	}
	if st, code := send(attacker, hashOf(attacker)); st != 204 {
		t.Fatalf("attacker's own report: %d %q", st, code)
	}
	if n := len(reports()); n != 2 {
		t.Fatalf("%d reports, want 2", n)
	}
}
