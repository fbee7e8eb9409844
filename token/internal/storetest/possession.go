package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/token"
)

// usesLeft reads a registration token's remaining uses.
func usesLeft(t *testing.T, s token.Store, reg string) int {
	t.Helper()
	r, err := s.AuthenticateRegistration(context.Background(), reg)
	if err != nil {
		t.Fatalf("AuthenticateRegistration: %v", err)
	}
	return r.UsesLeft
}

// mustWork checks that a machine token still authenticates.
func mustWork(t *testing.T, s token.Store, what, tok string) token.Machine {
	t.Helper()
	m, err := s.AuthenticateMachine(context.Background(), tok)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return m
}

func newKey(t *testing.T) string {
	t.Helper()
	k, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runPossession: a machine name with a live token is re-registered only by
// its holder (rotation), by the retry of its own unanswered registration,
// or after an admin's release (issue 14 item 1, issue 19 item 2).
func runPossession(t *testing.T, h Harness) {
	ctx := context.Background()
	ext := token.External{Issuer: "entitlement-service", Ref: "contract-1", Tier: "ext"}

	t.Run("TakeoverRefused", func(t *testing.T) {
		s := h.Open(t)
		fleet, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "fleet", Uses: token.Unlimited})
		other, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t2", Name: "other", Uses: 5})
		victimTok, victim := mustRegister(t, s, fleet, "victim")
		_, bystander := mustRegister(t, s, other, "bystander")
		wrong := newKey(t)
		for _, tc := range []struct {
			name string
			reg  func() error
		}{
			{"fleet_token", func() error { _, _, err := s.Register(ctx, fleet, "victim"); return err }},
			{"other_token", func() error { _, _, err := s.Register(ctx, other, "victim"); return err }},
			{"external", func() error { _, _, err := s.RegisterExternal(ctx, ext, "victim"); return err }},
			{"wrong_current_token", func() error {
				_, _, err := s.Register(ctx, other, "victim", token.WithCurrentToken(wrong))
				return err
			}},
			{"another_machines_token", func() error {
				bt, _ := mustRegister(t, s, other, "b2")
				_, _, err := s.Register(ctx, other, "victim", token.WithCurrentToken(bt))
				return err
			}},
			{"guessed_retry_key", func() error {
				_, _, err := s.Register(ctx, fleet, "victim", token.WithRetryKey(newKey(t)))
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := usesLeft(t, s, other)
				wantErr(t, "takeover", tc.reg(), token.ErrMachineTaken)
				got := mustWork(t, s, "victim's token after the attempt", victimTok)
				if got.ID != victim.ID || got.Tier != "t" {
					t.Fatalf("victim record changed: %+v", got)
				}
				if after := usesLeft(t, s, other); after != before && tc.name != "another_machines_token" {
					t.Fatalf("refused takeover took a use: %d -> %d", before, after)
				}
			})
		}
		live := 0
		for _, m := range allMachines(t, s) {
			if m.Machine == "victim" && !m.Revoked {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%d live records for victim", live)
		}
		_ = bystander
	})

	t.Run("TakeoverRefusedOnlyAfterCredentialChecks", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 1})
		mustRegister(t, s, reg, "m")
		unknown := newKey(t)
		_, _, err := s.Register(ctx, unknown, "m")
		wantErr(t, "unknown token on a taken name", err, token.ErrUnknown)
		_, _, err = s.Register(ctx, reg, "m")
		wantErr(t, "exhausted token on a taken name", err, token.ErrExhausted)
	})

	t.Run("RotationWithCurrentToken", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 3})
		old, _ := mustRegister(t, s, reg, "m")
		cur, m, err := s.Register(ctx, reg, "m", token.WithCurrentToken(old))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.AuthenticateMachine(ctx, old)
		wantErr(t, "rotated-out token", err, token.ErrRevoked)
		if got := mustWork(t, s, "rotated token", cur); got.ID != m.ID {
			t.Fatal("rotated token is not the returned record")
		}
		if n := usesLeft(t, s, reg); n != 1 {
			t.Fatalf("UsesLeft = %d, want 1 (a rotation takes a use)", n)
		}
		// The rotated-out token proves nothing any more.
		_, _, err = s.Register(ctx, reg, "m", token.WithCurrentToken(old))
		wantErr(t, "rotation with the old token", err, token.ErrMachineTaken)
		// External rotation.
		_, _, err = s.RegisterExternal(ctx, ext, "m", token.WithCurrentToken(cur))
		if err != nil {
			t.Fatalf("external rotation: %v", err)
		}
		_, err = s.AuthenticateMachine(ctx, cur)
		wantErr(t, "token after external rotation", err, token.ErrRevoked)
		// A malformed proof is refused as malformed, changing nothing.
		_, _, err = s.Register(ctx, reg, "fresh", token.WithCurrentToken("nope"))
		wantErr(t, "malformed current token", err, token.ErrMalformed)
		_, _, err = s.Register(ctx, reg, "fresh", token.WithRetryKey(strings.Repeat("a", 36)))
		wantErr(t, "malformed retry key", err, token.ErrMalformed)
		if n := usesLeft(t, s, reg); n != 1 {
			t.Fatalf("refused registrations took uses: %d left", n)
		}
	})

	t.Run("ReleaseThenRegister", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		old, _ := mustRegister(t, s, reg, "m")
		mustRegister(t, s, reg, "keep")
		wantErr(t, "release of an unknown name", s.ReleaseMachine(ctx, "nobody"), token.ErrUnknown)
		wantErr(t, "release of an empty name", s.ReleaseMachine(ctx, ""), token.ErrInvalid)
		wantErr(t, "release of a hostile name", s.ReleaseMachine(ctx, "m\nevent=x"), token.ErrInvalid)
		wantErr(t, "release of a long name", s.ReleaseMachine(ctx, strings.Repeat("m", token.MaxFieldLen+1)), token.ErrInvalid)
		if err := s.ReleaseMachine(ctx, "m"); err != nil {
			t.Fatal(err)
		}
		_, err := s.AuthenticateMachine(ctx, old)
		wantErr(t, "released token", err, token.ErrRevoked)
		wantErr(t, "second release", s.ReleaseMachine(ctx, "m"), token.ErrUnknown)
		tok, _ := mustRegister(t, s, reg, "m")
		mustWork(t, s, "token after release", tok)
		if n := usesLeft(t, s, reg); n != 2 {
			t.Fatalf("UsesLeft = %d, want 2", n)
		}
	})

	t.Run("ExpiredTokenDoesNotHoldTheName", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now), token.WithMachineLifetime(time.Hour))
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: 5})
		mustRegister(t, s, reg, "m")
		clk.Advance(time.Hour)
		tok, _ := mustRegister(t, s, reg, "m")
		mustWork(t, s, "token after expiry", tok)
	})

	t.Run("RegisterExternal", func(t *testing.T) {
		s := h.Open(t)
		tok, m, err := s.RegisterExternal(ctx, ext, "m")
		if err != nil {
			t.Fatal(err)
		}
		if m.Tier != "ext" || m.Issuer != ext.Issuer || m.ExternalRef != ext.Ref || m.Registration != "" || m.Machine != "m" {
			t.Fatalf("external record %+v", m)
		}
		got := mustWork(t, s, "external token", tok)
		if got.Issuer != ext.Issuer || got.ExternalRef != ext.Ref || got.Registration != "" {
			t.Fatalf("stored external record %+v", got)
		}
		if l, _ := s.ListRegistrations(ctx); len(l) != 0 {
			t.Fatalf("RegisterExternal made registration tokens: %+v", l)
		}
		for name, e := range map[string]token.External{
			"no_issuer":    {Ref: "r", Tier: "t"},
			"no_ref":       {Issuer: "i", Tier: "t"},
			"no_tier":      {Issuer: "i", Ref: "r"},
			"control_char": {Issuer: "i\n", Ref: "r", Tier: "t"},
			"long_ref":     {Issuer: "i", Ref: strings.Repeat("r", token.MaxFieldLen+1), Tier: "t"},
		} {
			_, _, err := s.RegisterExternal(ctx, e, "other")
			wantErr(t, "RegisterExternal "+name, err, token.ErrInvalid)
		}
		_, _, err = s.RegisterExternal(ctx, ext, "")
		wantErr(t, "RegisterExternal empty machine", err, token.ErrInvalid)
		if ms := allMachines(t, s); len(ms) != 1 {
			t.Fatalf("refused external registrations stored machines: %+v", ms)
		}
	})

	t.Run("RetryAfterLostAnswer", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now), token.WithRetryWindow(10*time.Minute))
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "one-use", Uses: 1})
		key := newKey(t)
		lost, first, err := s.Register(ctx, reg, "m", token.WithRetryKey(key))
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		// The answer was lost; the same registration again, with the same
		// key, takes no use (the token is exhausted) and gets a new token.
		again, m, err := s.Register(ctx, reg, "m", token.WithRetryKey(key))
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if m.ID == first.ID || m.Registration != first.Registration || m.Tier != "t" {
			t.Fatalf("retry record %+v", m)
		}
		_, err = s.AuthenticateMachine(ctx, lost)
		wantErr(t, "the unseen token", err, token.ErrRevoked)
		if n := usesLeft2(t, s, reg); n != 0 {
			t.Fatalf("UsesLeft = %d after a retry", n)
		}
		// Once the token has been used, the key opens nothing.
		mustWork(t, s, "retried token", again)
		_, _, err = s.Register(ctx, reg, "m", token.WithRetryKey(key))
		wantErr(t, "retry of an exhausted token after its token was used", err, token.ErrExhausted)
		mustWork(t, s, "retried token after a refused retry", again)

		// The window ends; retrying cannot extend it.
		reg2, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n2", Uses: 5})
		key2 := newKey(t)
		if _, _, err := s.Register(ctx, reg2, "w", token.WithRetryKey(key2)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(9 * time.Minute)
		if _, _, err := s.Register(ctx, reg2, "w", token.WithRetryKey(key2)); err != nil {
			t.Fatalf("retry inside the window: %v", err)
		}
		clk.Advance(2 * time.Minute)
		_, _, err = s.Register(ctx, reg2, "w", token.WithRetryKey(key2))
		wantErr(t, "retry after the window", err, token.ErrMachineTaken)
		if n := usesLeft(t, s, reg2); n != 4 {
			t.Fatalf("UsesLeft = %d, want 4: retries took uses", n)
		}

		// The key is bound to the credential source.
		key3 := newKey(t)
		if _, _, err := s.Register(ctx, reg2, "k", token.WithRetryKey(key3)); err != nil {
			t.Fatal(err)
		}
		usedTok, _, err := s.Register(ctx, reg2, "used", token.WithRetryKey(key3))
		if err != nil {
			t.Fatal(err)
		}
		mustWork(t, s, "used token", usedTok)
		_, _, err = s.Register(ctx, reg2, "used", token.WithRetryKey(key3))
		wantErr(t, "retry after the token was used", err, token.ErrMachineTaken)
		mustWork(t, s, "used token after a refused retry", usedTok)
		reg3, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n3", Uses: 5})
		_, _, err = s.Register(ctx, reg3, "k", token.WithRetryKey(key3))
		wantErr(t, "retry with another registration token", err, token.ErrMachineTaken)
		_, _, err = s.RegisterExternal(ctx, ext, "k", token.WithRetryKey(key3))
		wantErr(t, "retry with an external credential", err, token.ErrMachineTaken)
		if err := s.RevokeRegistration(ctx, mustID(t, reg2)); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Register(ctx, reg2, "k", token.WithRetryKey(key3))
		wantErr(t, "retry with a revoked registration token", err, token.ErrRevoked)

		// External retries.
		key4 := newKey(t)
		if _, _, err := s.RegisterExternal(ctx, ext, "e", token.WithRetryKey(key4)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RegisterExternal(ctx, ext, "e", token.WithRetryKey(key4)); err != nil {
			t.Fatalf("external retry: %v", err)
		}
	})
}

func usesLeft2(t *testing.T, s token.Store, reg string) int {
	t.Helper()
	l, err := s.ListRegistrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := mustID(t, reg)
	for _, r := range l {
		if r.ID == id {
			return r.UsesLeft
		}
	}
	t.Fatal("registration not listed")
	return 0
}

func mustID(t *testing.T, tok string) string {
	t.Helper()
	id, err := token.ID(tok)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runBounded: history per name, retention pruning and the cursor (issue
// 14 item 3).
func runBounded(t *testing.T, h Harness) {
	ctx := context.Background()

	t.Run("RotationsLeaveBoundedHistory", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
		cur, _ := mustRegister(t, s, reg, "m")
		mustRegister(t, s, reg, "other")
		const n = 50
		for i := range n {
			next, _, err := s.Register(ctx, reg, "m", token.WithCurrentToken(cur))
			if err != nil {
				t.Fatalf("rotation %d: %v", i, err)
			}
			cur = next
		}
		mustWork(t, s, "last token", cur)
		ms := allMachines(t, s)
		if len(ms) != token.KeepReplaced+2 {
			t.Fatalf("%d records after %d rotations, want %d (KeepReplaced+1 for m, 1 for other)", len(ms), n, token.KeepReplaced+2)
		}
		if ms[0].Machine != "other" {
			t.Fatalf("oldest record %+v, want other's", ms[0])
		}
	})

	t.Run("PruneAfterRetention", func(t *testing.T) {
		clk := newClock()
		s := h.Open(t, token.WithClock(clk.Now), token.WithMachineRetention(24*time.Hour))
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
		var old []token.Machine
		for i := range 3 {
			_, m := mustRegister(t, s, reg, fmt.Sprint("gone-", i))
			old = append(old, m)
		}
		liveTok, _ := mustRegister(t, s, reg, "live")
		for _, m := range old {
			if err := s.RevokeMachine(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(23 * time.Hour)
		if n, err := s.PruneMachines(ctx); err != nil || n != 0 {
			t.Fatalf("PruneMachines before the retention = %d, %v", n, err)
		}
		clk.Advance(2 * time.Hour)
		if n, err := s.PruneMachines(ctx); err != nil || n != 3 {
			t.Fatalf("PruneMachines = %d, %v; want 3", n, err)
		}
		ms := allMachines(t, s)
		if len(ms) != 1 || ms[0].Machine != "live" {
			t.Fatalf("after pruning: %+v", ms)
		}
		mustWork(t, s, "live token after pruning", liveTok)
	})

	t.Run("ListMachinesPages", func(t *testing.T) {
		s := h.Open(t)
		reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "n", Uses: token.Unlimited})
		const n = 7
		for i := range n {
			mustRegister(t, s, reg, fmt.Sprint("m", i))
		}
		page, next, err := s.ListMachines(ctx, "", 3)
		if err != nil || len(page) != 3 || next == "" || page[0].Machine != "m0" {
			t.Fatalf("first page %+v, %q, %v", page, next, err)
		}
		seen := map[string]bool{}
		for _, m := range allMachines(t, s) {
			if seen[m.Machine] {
				t.Fatalf("%s listed twice", m.Machine)
			}
			seen[m.Machine] = true
		}
		if len(seen) != n {
			t.Fatalf("listed %d machines, want %d", len(seen), n)
		}
		for _, tc := range []struct {
			after string
			limit int
			want  error
		}{
			{"", 0, token.ErrInvalid},
			{"", -1, token.ErrInvalid},
			{"", token.MaxListLimit + 1, token.ErrInvalid},
			{"x", 10, token.ErrMalformed},
			{"-1", 10, token.ErrMalformed},
			{"0", 10, token.ErrMalformed},
			{"01", 10, token.ErrMalformed},
			{"1 OR 1=1", 10, token.ErrMalformed},
			{"99999999999999999999", 10, token.ErrMalformed},
		} {
			_, _, err := s.ListMachines(ctx, tc.after, tc.limit)
			wantErr(t, fmt.Sprintf("ListMachines(%q, %d)", tc.after, tc.limit), err, tc.want)
		}
		// A cursor past the end is an empty last page.
		page, next, err = s.ListMachines(ctx, "9223372036854775807", 10)
		if err != nil || len(page) != 0 || next != "" {
			t.Fatalf("page past the end %+v, %q, %v", page, next, err)
		}
	})
}

// BoundedN is how many rotations TestBoundedRotations makes:
// LPSEC_BOUNDED_N, default 2,000 (bench/register.sh runs 300,000).
func BoundedN(t *testing.T) int {
	t.Helper()
	n := 2000
	if v := os.Getenv("LPSEC_BOUNDED_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LPSEC_BOUNDED_N=%q is not a positive number", v)
		}
	}
	return n
}

// Bounded rotates one machine name n times with one unlimited token and
// checks that the store keeps KeepReplaced+1 records for it and that the
// admin list (every page, as JSON) stays the same size; size reports the
// bytes the store holds. maintain, if not nil, runs every 1,000 rotations
// (PostgreSQL: the VACUUM that autovacuum would run). It logs the figures.
func Bounded(t *testing.T, s token.Store, n int, size func() int64, maintain func()) {
	ctx := context.Background()
	reg, _ := mustIssueRegistration(t, s, token.Registration{Tier: "t", Name: "fleet", Uses: token.Unlimited})
	cur, _ := mustRegister(t, s, reg, "m")
	listBytes := func() (int, int) {
		ms := allMachinesLimit(t, s, token.MaxListLimit)
		js, err := json.Marshal(ms)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms), len(js)
	}
	for range token.KeepReplaced + 1 {
		next, _, err := s.Register(ctx, reg, "m", token.WithCurrentToken(cur))
		if err != nil {
			t.Fatal(err)
		}
		cur = next
	}
	recs0, list0 := listBytes()
	size0 := size()
	start := time.Now()
	for i := range n {
		next, _, err := s.Register(ctx, reg, "m", token.WithCurrentToken(cur))
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		cur = next
		if maintain != nil && i%1000 == 999 {
			maintain()
		}
	}
	took := time.Since(start)
	recs, list := listBytes()
	sz := size()
	mustWork(t, s, "last token", cur)
	t.Logf("bounded: %d rotations in %v (%.0f/s); records %d -> %d; admin list %d -> %d bytes; store %d -> %d bytes",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), recs0, recs, list0, list, size0, sz)
	// The list's JSON may differ by a few bytes of timestamp precision.
	if recs != token.KeepReplaced+1 || recs != recs0 || list > list0+64 {
		t.Fatalf("state grew: %d records (want %d), admin list %d -> %d bytes", recs, token.KeepReplaced+1, list0, list)
	}
	// Allow slack for allocator and page granularity, not for growth with n.
	if sz > 2*size0+(1<<20) {
		t.Fatalf("store grew from %d to %d bytes over %d rotations", size0, sz, n)
	}
}

func allMachinesLimit(t *testing.T, s token.Store, limit int) []token.Machine {
	t.Helper()
	out := []token.Machine{}
	after := ""
	for {
		page, next, err := s.ListMachines(context.Background(), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		after = next
	}
}
