// Package storetest is the conformance suite every token.Store passes: the
// memory store in package token's tests and the PostgreSQL store in
// tokenpg's, so both behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/core"
)

// Harness opens the store under test. Open gives a fresh, empty store;
// OpenPair gives two instances over one backing store, as two servers on one
// database.
type Harness struct {
	Open     func(t *testing.T, opts ...token.Option) token.Store
	OpenPair func(t *testing.T, opts ...token.Option) (token.Store, token.Store)
}

// fakeClock is the injectable clock of the expiry tests: no sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func mustIssueRegistration(t *testing.T, s token.Store, r token.Registration) (string, token.Registration) {
	t.Helper()
	tok, rec, err := s.IssueRegistration(context.Background(), r)
	if err != nil {
		t.Fatalf("IssueRegistration: %v", err)
	}
	return tok, rec
}

func mustRegister(t *testing.T, s token.Store, reg, machine string) (string, token.Machine) {
	t.Helper()
	tok, m, err := s.Register(context.Background(), reg, machine)
	if err != nil {
		t.Fatalf("Register(%s): %v", machine, err)
	}
	return tok, m
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// allMachines pages through ListMachines two records at a time, so that
// every test also checks the cursor.
func allMachines(t *testing.T, s token.Store) []token.Machine {
	t.Helper()
	out := []token.Machine{}
	after := ""
	for i := 0; ; i++ {
		page, next, err := s.ListMachines(context.Background(), after, 2)
		if err != nil {
			t.Fatalf("ListMachines(%q): %v", after, err)
		}
		if len(page) > 2 || (next != "" && len(page) != 2) {
			t.Fatalf("ListMachines page of %d records, next %q", len(page), next)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatal("ListMachines does not end")
		}
		after = next
	}
}

// Run is the behaviour every token.Store must have.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	runPossession(t, h)
	runBounded(t, h)

	t.Run("RegistrationIssueAndAuthenticate", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now))
		until := clk.Now().Add(24 * time.Hour)
		tok, rec := mustIssueRegistration(t, s, token.Registration{Tier: "stable", Name: "fleet-a", Uses: 3, ValidUntil: until,
			ID: "ignored", UsesLeft: 99, Revoked: true})
		if _, err := token.Parse(tok); err != nil {
			t.Fatal(err)
		}
		id, _ := token.ID(tok)
		want := token.Registration{ID: id, Tier: "stable", Name: "fleet-a", Uses: 3, UsesLeft: 3,
			ValidUntil: core.Stamp(until), Created: core.Stamp(clk.Now())}
		if rec != want {
			t.Fatalf("issued record %+v, want %+v", rec, want)
		}
		got, err := s.AuthenticateRegistration(ctx, strings.ToUpper(tok))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("authenticated record %+v, want %+v", got, want)
		}
		list, err := s.ListRegistrations(ctx)
		if err != nil || len(list) != 1 || list[0] != want {
			t.Fatalf("ListRegistrations = %+v, %v", list, err)
		}
	})

	t.Run("IssueRefusesInvalidRecords", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now))
		long := strings.Repeat("x", token.MaxFieldLen+1)
		regs := map[string]token.Registration{
			"empty_tier":            {Name: "n", Uses: 1},
			"empty_name":            {Tier: "t", Uses: 1},
			"tier_too_long":         {Tier: long, Name: "n", Uses: 1},
			"name_control_char":     {Tier: "t", Name: "a\nb", Uses: 1},
			"name_c1_control":       {Tier: "t", Name: "a\u0085b", Uses: 1},
			"tier_invalid_utf8":     {Tier: "\xff", Name: "n", Uses: 1},
			"zero_uses":             {Tier: "t", Name: "n"},
			"negative_uses":         {Tier: "t", Name: "n", Uses: -2},
			"uses_over_max":         {Tier: "t", Name: "n", Uses: token.MaxUses + 1},
			"valid_until_now":       {Tier: "t", Name: "n", Uses: 1, ValidUntil: clk.Now()},
			"valid_until_past":      {Tier: "t", Name: "n", Uses: 1, ValidUntil: clk.Now().Add(-time.Hour)},
			"valid_until_long_past": {Tier: "t", Name: "n", Uses: 1, ValidUntil: time.Unix(1, 0)},
		}
		for name, r := range regs {
			t.Run("registration_"+name, func(t *testing.T) {
				tok, _, err := s.IssueRegistration(ctx, r)
				wantErr(t, "IssueRegistration", err, token.ErrInvalid)
				if tok != "" {
					t.Fatal("token returned with an error")
				}
			})
		}
		syncs := map[string]token.Sync{
			"empty_tier":       {Name: "n"},
			"empty_name":       {Tier: "t"},
			"name_too_long":    {Tier: "t", Name: long},
			"tier_del_char":    {Tier: "t\x7f", Name: "n"},
			"valid_until_past": {Tier: "t", Name: "n", ValidUntil: clk.Now().Add(-time.Second)},
		}
		for name, sy := range syncs {
			t.Run("sync_"+name, func(t *testing.T) {
				_, _, err := s.IssueSync(ctx, sy)
				wantErr(t, "IssueSync", err, token.ErrInvalid)
			})
		}
		if l, _ := s.ListRegistrations(ctx); len(l) != 0 {
			t.Fatalf("refused records were stored: %+v", l)
		}
	})

	t.Run("RegisterUsesAndExhausts", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now))
		reg, rrec := mustIssueRegistration(t, s, token.Registration{Tier: "beta", Name: "n", Uses: 2})
		tok1, m1 := mustRegister(t, s, reg, "machine-1")
		if m1.Tier != "beta" || m1.Machine != "machine-1" || m1.Registration != rrec.ID ||
			!m1.Created.Equal(core.Stamp(clk.Now())) || !m1.LastSeen.IsZero() || m1.Revoked {
			t.Fatalf("machine record %+v", m1)
		}
		if id, _ := token.ID(tok1); id != m1.ID {
			t.Fatal("machine token.ID is not the token's digest")
		}
		clk.Advance(time.Second)
		mustRegister(t, s, reg, "machine-2")
		_, _, err := s.Register(ctx, reg, "machine-3")
		wantErr(t, "third Register", err, token.ErrExhausted)
		_, err = s.AuthenticateRegistration(ctx, reg)
		wantErr(t, "AuthenticateRegistration", err, token.ErrExhausted)
		l, _ := s.ListRegistrations(ctx)
		if len(l) != 1 || l[0].UsesLeft != 0 || l[0].Uses != 2 {
			t.Fatalf("ListRegistrations = %+v", l)
		}
		clk.Advance(time.Minute)
		m, err := s.AuthenticateMachine(ctx, tok1)
		if err != nil {
			t.Fatal(err)
		}
		if !m.LastSeen.Equal(core.Stamp(clk.Now())) {
			t.Fatalf("LastSeen = %v, want %v", m.LastSeen, clk.Now())
		}
		clk.Advance(30 * time.Second)
		if again, _ := s.AuthenticateMachine(ctx, tok1); !again.LastSeen.Equal(m.LastSeen) {
			t.Fatalf("LastSeen moved after 30s: %v", again.LastSeen)
		}
		clk.Advance(30 * time.Second)
		if again, _ := s.AuthenticateMachine(ctx, tok1); !again.LastSeen.Equal(core.Stamp(clk.Now())) {
			t.Fatalf("LastSeen did not move after a minute: %v", again.LastSeen)
		}
		ms := allMachines(t, s)
		if len(ms) != 2 || ms[0].Machine != "machine-1" || !ms[0].LastSeen.Equal(core.Stamp(clk.Now())) {
			t.Fatalf("ListMachines = %+v", ms)
		}
	})

	t.Run("RegisterUnlimited", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
		for i := range 5 {
			mustRegister(t, s, reg, fmt.Sprint("m", i))
		}
		r, err := s.AuthenticateRegistration(ctx, reg)
		if err != nil || r.UsesLeft != token.Unlimited {
			t.Fatalf("AuthenticateRegistration = %+v, %v", r, err)
		}
	})

	t.Run("RegisterRefusesHostileInput", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		other, _ := token.Generate()
		tests := []struct {
			name, reg, machine string
			want               error
		}{
			{"malformed_registration_token", "not-a-token", "m", token.ErrMalformed},
			{"unknown_registration_token", other, "m", token.ErrUnknown},
			{"empty_machine", reg, "", token.ErrInvalid},
			{"machine_too_long", reg, strings.Repeat("m", token.MaxFieldLen+1), token.ErrInvalid},
			{"machine_with_newline", reg, "m\nevent=forged", token.ErrInvalid},
			{"machine_invalid_utf8", reg, "m\xc0", token.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, _, err := s.Register(ctx, tt.reg, tt.machine)
				wantErr(t, "Register", err, tt.want)
				if tok != "" {
					t.Fatal("token returned with an error")
				}
			})
		}
		r, _ := s.AuthenticateRegistration(ctx, reg)
		if r.UsesLeft != 5 {
			t.Fatalf("refused registrations took uses: %d left", r.UsesLeft)
		}
		if ms := allMachines(t, s); len(ms) != 0 {
			t.Fatalf("refused registrations made machines: %+v", ms)
		}
	})

	t.Run("ReRegisterRevokesPreviousMachineToken", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 10})
		old, _ := mustRegister(t, s, reg, "m")
		other, _ := mustRegister(t, s, reg, "other")
		cur, _, err := s.Register(ctx, reg, "m", token.WithCurrentToken(old))
		if err != nil {
			t.Fatalf("rotation: %v", err)
		}
		_, err = s.AuthenticateMachine(ctx, old)
		wantErr(t, "old token", err, token.ErrRevoked)
		if _, err := s.AuthenticateMachine(ctx, cur); err != nil {
			t.Fatalf("new token: %v", err)
		}
		if _, err := s.AuthenticateMachine(ctx, other); err != nil {
			t.Fatalf("another machine's token: %v", err)
		}
		ms := allMachines(t, s)
		live := 0
		for _, m := range ms {
			if m.Machine == "m" && !m.Revoked {
				live++
			}
		}
		if len(ms) != 3 || live != 1 {
			t.Fatalf("ListMachines = %+v", ms)
		}
	})

	t.Run("ConcurrentRegistrationsTakeExactlyTheUses", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 50})
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, _, errs[i] = s.Register(ctx, reg, fmt.Sprintf("machine-%03d", i))
			})
		}
		close(start)
		wg.Wait()
		ok, exhausted := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, token.ErrExhausted):
				exhausted++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 50 || exhausted != n-50 {
			t.Fatalf("%d registrations succeeded and %d were exhausted, want 50 and %d", ok, exhausted, n-50)
		}
		ms := allMachines(t, s)
		if len(ms) != 50 {
			t.Fatalf("%d machine tokens stored, want 50", len(ms))
		}
		r, _ := s.ListRegistrations(ctx)
		if r[0].UsesLeft != 0 {
			t.Fatalf("UsesLeft = %d", r[0].UsesLeft)
		}
	})

	t.Run("ConcurrentRegistrationsOfOneNameLeaveOneLiveToken", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 50})
		const n = 20
		toks := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				toks[i], _, errs[i] = s.Register(ctx, reg, "same-machine")
			})
		}
		close(start)
		wg.Wait()
		live, taken := 0, 0
		for i, tok := range toks {
			switch {
			case errs[i] == nil:
				if _, err := s.AuthenticateMachine(ctx, tok); err != nil {
					t.Errorf("the winner's token: %v", err)
				}
				live++
			case errors.Is(errs[i], token.ErrMachineTaken):
				taken++
			default:
				t.Errorf("Register: %v", errs[i])
			}
		}
		if live != 1 || taken != n-1 {
			t.Fatalf("%d registrations of one name succeeded, %d taken; want 1 and %d", live, taken, n-1)
		}
		if r, _ := s.AuthenticateRegistration(ctx, reg); r.UsesLeft != 49 {
			t.Fatalf("UsesLeft = %d, want 49: refused registrations took uses", r.UsesLeft)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now), token.WithMachineLifetime(48*time.Hour))
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5, ValidUntil: clk.Now().Add(time.Hour)})
		syncTok, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "upstream", ValidUntil: clk.Now().Add(2 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		forever, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "forever"})
		if err != nil {
			t.Fatal(err)
		}
		mtok, m := mustRegister(t, s, reg, "m")
		if !m.ValidUntil.Equal(core.Stamp(clk.Now().Add(48 * time.Hour))) {
			t.Fatalf("machine ValidUntil = %v", m.ValidUntil)
		}

		clk.Advance(time.Hour - time.Microsecond)
		if _, err := s.AuthenticateRegistration(ctx, reg); err != nil {
			t.Fatalf("registration just before expiry: %v", err)
		}
		clk.Advance(time.Microsecond)
		_, err = s.AuthenticateRegistration(ctx, reg)
		wantErr(t, "registration at valid-until", err, token.ErrExpired)
		_, _, err = s.Register(ctx, reg, "late")
		wantErr(t, "Register with expired token", err, token.ErrExpired)

		clk.Advance(time.Hour)
		_, err = s.AuthenticateSync(ctx, syncTok)
		wantErr(t, "expired sync token", err, token.ErrExpired)
		if _, err := s.AuthenticateSync(ctx, forever); err != nil {
			t.Fatalf("sync token without valid-until: %v", err)
		}
		if _, err := s.AuthenticateMachine(ctx, mtok); err != nil {
			t.Fatalf("machine token before its lifetime: %v", err)
		}
		clk.Advance(46 * time.Hour)
		_, err = s.AuthenticateMachine(ctx, mtok)
		wantErr(t, "expired machine token", err, token.ErrExpired)
	})

	t.Run("Revoke", func(t *testing.T) {
		s := h.Open(t)
		reg, rrec := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		mtok, m := mustRegister(t, s, reg, "m")
		mtok2, _ := mustRegister(t, s, reg, "m2")
		stok, srec, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
		if err != nil {
			t.Fatal(err)
		}

		if err := s.RevokeRegistration(ctx, rrec.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.AuthenticateRegistration(ctx, reg)
		wantErr(t, "revoked registration", err, token.ErrRevoked)
		_, _, err = s.Register(ctx, reg, "m3")
		wantErr(t, "Register with revoked token", err, token.ErrRevoked)
		if _, err := s.AuthenticateMachine(ctx, mtok); err != nil {
			t.Fatalf("machine token after its registration token was revoked: %v", err)
		}

		if err := s.RevokeMachine(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.AuthenticateMachine(ctx, mtok)
		wantErr(t, "revoked machine", err, token.ErrRevoked)
		if _, err := s.AuthenticateMachine(ctx, mtok2); err != nil {
			t.Fatalf("other machine: %v", err)
		}

		if err := s.RevokeSync(ctx, srec.ID); err != nil {
			t.Fatal(err)
		}
		_, err = s.AuthenticateSync(ctx, stok)
		wantErr(t, "revoked sync", err, token.ErrRevoked)

		// Idempotent.
		if err := s.RevokeSync(ctx, srec.ID); err != nil {
			t.Fatalf("second revoke: %v", err)
		}
		// Hostile IDs.
		never, _ := token.Generate()
		unknown, _ := token.ID(never)
		for name, f := range map[string]func(context.Context, string) error{
			"registration": s.RevokeRegistration, "machine": s.RevokeMachine, "sync": s.RevokeSync,
		} {
			wantErr(t, name+" unknown token.ID", f(ctx, unknown), token.ErrUnknown)
			wantErr(t, name+" malformed token.ID", f(ctx, "'; DROP TABLE x; --"), token.ErrMalformed)
			wantErr(t, name+" token as token.ID", f(ctx, mtok2), token.ErrMalformed)
		}
		// An token.ID of one kind does not revoke another kind.
		wantErr(t, "sync token.ID as machine token.ID", s.RevokeMachine(ctx, srec.ID), token.ErrUnknown)

		ms := allMachines(t, s)
		if len(ms) != 2 || ms[0].Revoked == ms[1].Revoked {
			t.Fatalf("ListMachines = %+v", ms)
		}
		ss, _ := s.ListSyncs(ctx)
		if len(ss) != 1 || !ss[0].Revoked {
			t.Fatalf("ListSyncs = %+v", ss)
		}
	})

	t.Run("RevokedMachineCanRegisterAgain", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		_, m := mustRegister(t, s, reg, "m")
		if err := s.RevokeMachine(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		tok, _ := mustRegister(t, s, reg, "m")
		if _, err := s.AuthenticateMachine(ctx, tok); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AuthenticateRefusesHostileTokens", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		mtok, _ := mustRegister(t, s, reg, "m")
		stok, _, _ := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
		unknown, _ := token.Generate()
		id, _ := token.ID(mtok)
		tests := []struct {
			name, machine, sync, reg string
			want                     error
		}{
			{"unknown_token", unknown, unknown, unknown, token.ErrUnknown},
			{"empty", "", "", "", token.ErrMalformed},
			{"record_id_as_token", id, id, id, token.ErrMalformed},
			{"urn_spelling", "urn:uuid:" + mtok, "urn:uuid:" + stok, "urn:uuid:" + reg, token.ErrMalformed},
			{"braced_spelling", "{" + mtok + "}", "{" + stok + "}", "{" + reg + "}", token.ErrMalformed},
			{"sql_injection", "' OR '1'='1", "' OR 1=1 --", "x' OR 'x'='x", token.ErrMalformed},
			{"other_kinds_token", stok, mtok, mtok, token.ErrUnknown},
			{"long", strings.Repeat(mtok, 1000), strings.Repeat(stok, 1000), strings.Repeat(reg, 1000), token.ErrMalformed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.AuthenticateMachine(ctx, tt.machine)
				wantErr(t, "AuthenticateMachine", err, tt.want)
				_, err = s.AuthenticateSync(ctx, tt.sync)
				wantErr(t, "AuthenticateSync", err, tt.want)
				_, err = s.AuthenticateRegistration(ctx, tt.reg)
				wantErr(t, "AuthenticateRegistration", err, tt.want)
			})
		}
	})

	t.Run("SyncIssueAndAuthenticate", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now))
		tok, rec, err := s.IssueSync(ctx, token.Sync{Tier: "stable", Name: "mirror-eu", LastUsed: clk.Now(), Revoked: true})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := token.ID(tok)
		want := token.Sync{ID: id, Tier: "stable", Name: "mirror-eu", Created: core.Stamp(clk.Now())}
		if rec != want {
			t.Fatalf("issued %+v, want %+v", rec, want)
		}
		clk.Advance(time.Second)
		got, err := s.AuthenticateSync(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		want.LastUsed = core.Stamp(clk.Now())
		if got != want {
			t.Fatalf("authenticated %+v, want %+v", got, want)
		}
		l, err := s.ListSyncs(ctx)
		if err != nil || len(l) != 1 || l[0] != want {
			t.Fatalf("ListSyncs = %+v, %v", l, err)
		}
		// LastUsed moves at most once a minute: reads stay reads.
		clk.Advance(59 * time.Second)
		if got, _ := s.AuthenticateSync(ctx, tok); !got.LastUsed.Equal(want.LastUsed) {
			t.Fatalf("LastUsed moved after 59s: %v", got.LastUsed)
		}
		clk.Advance(time.Second)
		if got, _ := s.AuthenticateSync(ctx, tok); !got.LastUsed.Equal(core.Stamp(clk.Now())) {
			t.Fatalf("LastUsed did not move after a minute: %v", got.LastUsed)
		}
	})

	t.Run("ListsAreOldestFirst", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now))
		for i := range 3 {
			if _, _, err := s.IssueSync(ctx, token.Sync{Tier: "t", Name: fmt.Sprint("s", i)}); err != nil {
				t.Fatal(err)
			}
			clk.Advance(-time.Minute) // issued in reverse time order
		}
		l, _ := s.ListSyncs(ctx)
		if len(l) != 3 || l[0].Name != "s2" || l[2].Name != "s0" {
			t.Fatalf("ListSyncs = %+v", l)
		}
		empty, next, err := s.ListMachines(ctx, "", token.MaxListLimit)
		if err != nil || empty == nil || len(empty) != 0 || next != "" {
			t.Fatalf("ListMachines on an empty store = %#v, %v", empty, err)
		}
	})

	t.Run("CancelledContextFailsClosed", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		mtok, _ := mustRegister(t, s, reg, "m")
		stok, _, _ := s.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.AuthenticateMachine(cctx, mtok)
		wantErr(t, "AuthenticateMachine", err, token.ErrUnavailable)
		wantErr(t, "AuthenticateMachine", err, context.Canceled)
		_, err = s.AuthenticateSync(cctx, stok)
		wantErr(t, "AuthenticateSync", err, token.ErrUnavailable)
		_, err = s.AuthenticateRegistration(cctx, reg)
		wantErr(t, "AuthenticateRegistration", err, token.ErrUnavailable)
		_, _, err = s.Register(cctx, reg, "m2")
		wantErr(t, "Register", err, token.ErrUnavailable)
		_, _, err = s.IssueSync(cctx, token.Sync{Tier: "t", Name: "n"})
		wantErr(t, "IssueSync", err, token.ErrUnavailable)
		r, _ := s.AuthenticateRegistration(ctx, reg)
		if r.UsesLeft != 4 {
			t.Fatalf("a cancelled Register took a use: %d left", r.UsesLeft)
		}
	})

	t.Run("InstancesShareTokensAndRevocations", func(t *testing.T) {
		a, b := h.OpenPair(t)
		reg, _ := mustIssueRegistration(t, a, token.Registration{Tier: "t", Name: "n", Uses: 2})
		mtok, m := mustRegister(t, b, reg, "m")
		if _, err := a.AuthenticateMachine(ctx, mtok); err != nil {
			t.Fatalf("instance A does not see B's machine token: %v", err)
		}
		stok, srec, _ := b.IssueSync(ctx, token.Sync{Tier: "t", Name: "n"})
		if _, err := a.AuthenticateSync(ctx, stok); err != nil {
			t.Fatalf("instance A does not see B's sync token: %v", err)
		}
		if err := a.RevokeMachine(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		_, err := b.AuthenticateMachine(ctx, mtok)
		wantErr(t, "B after A revoked", err, token.ErrRevoked)
		if err := b.RevokeSync(ctx, srec.ID); err != nil {
			t.Fatal(err)
		}
		_, err = a.AuthenticateSync(ctx, stok)
		wantErr(t, "A after B revoked", err, token.ErrRevoked)
		// Uses are shared too.
		mustRegister(t, a, reg, "m2")
		_, _, err = b.Register(ctx, reg, "m3")
		wantErr(t, "B after A took the last use", err, token.ErrExhausted)
		// Re-registration on A revokes the token B issued.
		tokB, _ := mustIssueRegistration(t, b, token.Registration{Tier: "t", Name: "n2", Uses: 2})
		first, _ := mustRegister(t, b, tokB, "shared")
		_, _, err = a.Register(ctx, tokB, "shared")
		wantErr(t, "A re-registering B's live machine without proof", err, token.ErrMachineTaken)
		if _, _, err := a.Register(ctx, tokB, "shared", token.WithCurrentToken(first)); err != nil {
			t.Fatalf("rotation on A: %v", err)
		}
		_, err = b.AuthenticateMachine(ctx, first)
		wantErr(t, "B's token after A rotated the machine", err, token.ErrRevoked)
	})
}
