package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// from is a request to the middleware from client addr.
func from(addr, userPass string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/admin/login", nil)
	r.RemoteAddr = addr
	r.Header.Set("Authorization", basicHeader(userPass))
	return r
}

// rotating returns the i-th address of an attacker that changes address
// every attempt.
func rotating(i int) string { return fmt.Sprintf("198.51.%d.%d:1000", i/250, i%250+1) }

// The first attack of issue 14: wrong passwords against a known name
// refused the real admin with 429 although the right password was cached,
// because the per-user throttle ran before the cache. Now the user's
// failures from other clients refuse nothing, and a cached password costs
// no hash and waits for nothing.
func TestCachedPasswordNeverThrottled(t *testing.T) {
	hashes(t)
	b, _, w := newTestBasic(t, "alice:"+bcrypt4, WithThrottle(3, time.Minute))
	if rec := serve(b, from("192.0.2.1:1", "alice:"+testPassword)); rec.Code != http.StatusOK {
		t.Fatalf("first login: %d", rec.Code)
	}
	w.take()
	// One flooding address, then many: the one is throttled, the many
	// are not (one failure each), and the user's budget is long gone.
	for i := range 10 {
		code := serve(b, from("203.0.113.9:2", "alice:wrong")).Code
		if want := map[bool]int{true: 401, false: 429}[i < 3]; code != want {
			t.Fatalf("flood attempt %d from one address: %d, want %d", i, code, want)
		}
	}
	for i := range 40 {
		if code := serve(b, from(rotating(i), "alice:wrong")).Code; code != http.StatusUnauthorized {
			t.Fatalf("rotating attempt %d: %d, want 401", i, code)
		}
	}
	w.take()
	for _, addr := range []string{"192.0.2.1:1", "192.0.2.77:1", "[2001:db8::1]:1"} {
		if rec := serve(b, from(addr, "alice:"+testPassword)); rec.Code != http.StatusOK {
			t.Fatalf("cached login from %s during the flood: %d", addr, rec.Code)
		}
	}
	if err := b.Verify(context.Background(), "alice", testPassword); err != nil {
		t.Fatalf("Verify during the flood: %v", err)
	}
	if got := w.take(); len(got) != 0 {
		t.Fatalf("cached logins computed %v", got)
	}
	// The flooding address itself stays refused, even with the right
	// password: its bucket is its own.
	if code := serve(b, from("203.0.113.9:3", "alice:"+testPassword)).Code; code != http.StatusTooManyRequests {
		t.Fatalf("right password from the throttled address: %d, want 429", code)
	}
}

// The per-user budget never refuses: a first login (not cached) from a
// clean address succeeds however many clients failed for that user, and
// Verify, which knows no client, is never throttled.
func TestUserBudgetNeverRefuses(t *testing.T) {
	hashes(t)
	b, _, w := newTestBasic(t, "alice:"+bcrypt4, WithThrottle(2, time.Minute), WithoutCache())
	for i := range 50 {
		if code := serve(b, from(rotating(i), "alice:wrong")).Code; code != http.StatusUnauthorized {
			t.Fatalf("rotating attempt %d: %d, want 401 (a per-user limit refused)", i, code)
		}
	}
	for range 5 {
		if err := b.Verify(context.Background(), "alice", "wrong"); errors.Is(err, ErrThrottled) || !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Verify wrong: %v", err)
		}
	}
	w.take()
	if code := serve(b, from("192.0.2.200:1", "alice:"+testPassword)).Code; code != http.StatusOK {
		t.Fatalf("first login from a clean address: %d", code)
	}
	if err := b.Verify(context.Background(), "alice", testPassword); err != nil {
		t.Fatalf("Verify right: %v", err)
	}
	if got := len(w.take()); got != 2 {
		t.Fatalf("%d hashes, want 2 (no cache)", got)
	}
	// The budget only orders the queue: alice is now a hot user.
	tk, _, _, _ := b.limiter.admit(b.now(), "alice", netip.MustParseAddr("192.0.2.201"))
	if p := b.limiter.priority(b.now(), "alice", &tk); p != prioCleanHotUser {
		t.Fatalf("priority of a clean client for a hot user = %s", prioNames[p])
	}
}

// The second attack of issue 14, in miniature: the queue is full of a
// flood's failing attempts when the real admin's first login arrives from
// a clean address. It takes the place of the newest failing attempt
// (which is refused as overloaded) instead of being refused itself, and
// is served before the older failing attempts.
func TestCleanLoginTakesPlaceOfFailing(t *testing.T) {
	hashes(t)
	var logs logBuffer
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithConcurrency(1, 1), WithThrottle(5, time.Minute), WithoutCache(),
		WithLogger(newLogger(&logs)))
	entered, release := make(chan struct{}), make(chan struct{})
	b.onHash = func(string) { entered <- struct{}{}; <-release }
	codes := func(addr, up string) chan int {
		c := make(chan int, 1)
		go func() { c <- serve(b, from(addr, up)).Code }()
		return c
	}
	first := codes("203.0.113.1:1", "alice:wrong")
	<-entered // the only slot is busy
	second := codes("203.0.113.1:2", "alice:wrong")
	for b.gate.waiting() != 1 {
		runtime.Gosched()
	}
	admin := codes("192.0.2.50:1", "alice:"+testPassword)
	if code := <-second; code != http.StatusServiceUnavailable {
		t.Fatalf("bumped failing attempt: %d, want 503", code)
	}
	for b.gate.waiting() != 1 {
		runtime.Gosched()
	}
	// A third failing attempt finds the queue full of a better one.
	if code := serve(b, from("203.0.113.1:3", "alice:wrong")).Code; code != http.StatusServiceUnavailable {
		t.Fatalf("failing attempt behind a full queue: %d, want 503", code)
	}
	release <- struct{}{}
	<-entered // the admin's hash
	release <- struct{}{}
	if code := <-first; code != http.StatusUnauthorized {
		t.Fatalf("first failing attempt: %d", code)
	}
	if code := <-admin; code != http.StatusOK {
		t.Fatalf("admin: %d, want 200", code)
	}
	var prios []any
	for _, r := range logs.records(t) {
		if r["reason"] == "overloaded" {
			prios = append(prios, r["priority"])
		}
	}
	if fmt.Sprint(prios) != "[failing_client failing_client]" {
		t.Fatalf("overloaded records' priorities = %v", prios)
	}
	if strings.Contains(logs.String(), testPassword) || strings.Contains(logs.String(), "wrong") {
		t.Fatalf("log holds a password:\n%s", logs.String())
	}
}

// Attempts refused as overloaded, or abandoned while queued, keep the
// tokens they took: a flood cannot try again for free by overloading the
// server. (Before, they were given back.)
func TestOverloadRefundsNothing(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithConcurrency(1, 0), WithThrottle(2, time.Minute), WithoutCache())
	entered, release := make(chan struct{}), make(chan struct{})
	b.onHash = func(string) { entered <- struct{}{}; <-release }
	held := make(chan int, 1)
	go func() { held <- serve(b, from("192.0.2.1:1", "alice:"+testPassword)).Code }()
	<-entered
	for i := range 2 {
		if code := serve(b, from("203.0.113.7:1", "alice:wrong")).Code; code != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d while overloaded: %d, want 503", i, code)
		}
	}
	rec := serve(b, from("203.0.113.7:1", "alice:wrong"))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "60" {
		t.Fatalf("third attempt: %d Retry-After %q, want 429 60 (overloaded attempts were refunded)", rec.Code, rec.Header().Get("Retry-After"))
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Fatalf("held login: %d", code)
	}
}

func TestAbandonedWaitRefundsNothing(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithConcurrency(1, 1), WithThrottle(1, time.Minute), WithoutCache())
	entered, release := make(chan struct{}), make(chan struct{})
	b.onHash = func(string) { entered <- struct{}{}; <-release }
	held := make(chan int, 1)
	go func() { held <- serve(b, from("192.0.2.1:1", "alice:"+testPassword)).Code }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan int, 1)
	go func() { waited <- serve(b, from("203.0.113.7:1", "alice:wrong").WithContext(ctx)).Code }()
	for b.gate.waiting() != 1 {
		runtime.Gosched()
	}
	cancel()
	if code := <-waited; code != http.StatusServiceUnavailable {
		t.Fatalf("abandoned attempt: %d", code)
	}
	if b.gate.waiting() != 0 {
		t.Fatal("abandoned attempt still queued")
	}
	if code := serve(b, from("203.0.113.7:1", "alice:wrong")).Code; code != http.StatusTooManyRequests {
		t.Fatalf("after an abandoned attempt: %d, want 429", code)
	}
	close(release)
	<-held
}

// Per-client limits group IPv6 by /64 and IPv4 by address; an
// IPv4-mapped IPv6 address is its IPv4 address.
func TestThrottleAddressGroups(t *testing.T) {
	hashes(t)
	for _, tc := range []struct {
		name        string
		first, next string
		same        bool
	}{
		{"IPv6 same /64", "[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff:ffff:ffff:fffe]:1", true},
		{"IPv6 next /64", "[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1", false},
		{"IPv4 same address", "192.0.2.1:1", "192.0.2.1:2", true},
		{"IPv4 next address", "192.0.2.1:1", "192.0.2.2:1", false},
		{"IPv4-mapped", "192.0.2.1:1", "[::ffff:192.0.2.1]:1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithThrottle(1, time.Minute), WithoutCache())
			if code := serve(b, from(tc.first, "alice:wrong")).Code; code != http.StatusUnauthorized {
				t.Fatalf("first: %d", code)
			}
			want := map[bool]int{true: 429, false: 401}[tc.same]
			if code := serve(b, from(tc.next, "alice:wrong")).Code; code != want {
				t.Fatalf("second from %s: %d, want %d", tc.next, code, want)
			}
		})
	}
}

// The order of the hash queue, decided by what the limiter remembers.
func TestPriority(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(2, time.Minute, true)
	c, d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	prio := func(user string, a netip.Addr) (ticket, int) {
		t.Helper()
		tk, ok, _, _ := l.admit(clk.now(), user, a)
		if !ok {
			t.Fatalf("%s from %v refused", user, a)
		}
		return tk, l.priority(clk.now(), user, &tk)
	}
	if _, p := prio("alice", c); p != prioClean {
		t.Fatalf("fresh client: %s", prioNames[p])
	}
	if _, p := prio("bob", c); p != prioFailing {
		t.Fatalf("client with a failure for another user: %s", prioNames[p])
	}
	if _, p := prio("alice", netip.MustParseAddr("2001:db8::1")); p != prioClean {
		t.Fatalf("second fresh client: %s", prioNames[p])
	}
	// alice has used her 2 tokens from all clients: hot.
	if _, p := prio("alice", d); p != prioCleanHotUser {
		t.Fatalf("clean client, hot user: %s", prioNames[p])
	}
	tk, p := prio("alice", d)
	if p != prioFailingHotUser {
		t.Fatalf("failing client, hot user: %s", prioNames[p])
	}
	l.succeeded(clk.now(), tk)
	if _, p := prio("alice", d); p != prioKnown {
		t.Fatalf("after a success from this client: %s", prioNames[p])
	}
	if _, p := prio("bob", d); p == prioKnown {
		t.Fatal("known for another user")
	}
	clk.advance(knownTTL)
	if _, p := prio("alice", d); p == prioKnown {
		t.Fatal("still known after knownTTL")
	}
	// Everything forgotten after the buckets refill.
	clk.advance(10 * time.Minute)
	if _, p := prio("alice", d); p != prioClean {
		t.Fatalf("after refill: %s", prioNames[p])
	}
	// A client that fails more slowly than its buckets refill (a flood
	// slowed down by the queue) still counts as failing until burst ×
	// interval has passed since its last failure.
	e := netip.MustParseAddr("192.0.2.3")
	if _, p := prio("dave", e); p != prioClean {
		t.Fatalf("fresh client: %s", prioNames[p])
	}
	clk.advance(time.Minute) // the buckets are full again
	if _, p := prio("erin", e); p != prioFailing {
		t.Fatalf("slow failing client: %s", prioNames[p])
	}
	clk.advance(2*time.Minute - time.Nanosecond)
	if _, p := prio("frank", e); p != prioFailing {
		t.Fatalf("slow failing client just within the window: %s", prioNames[p])
	}
	clk.advance(2 * time.Minute)
	// A success undoes the mark its attempt made.
	tk, p = prio("gina", e)
	if p != prioClean {
		t.Fatalf("after the window: %s", prioNames[p])
	}
	l.succeeded(clk.now(), tk)
	if _, p := prio("hank", e); p != prioClean {
		t.Fatalf("after a success: %s", prioNames[p])
	}
	// Without a client (Verify), nothing is refused and the client counts
	// as clean.
	for range 5 {
		if _, ok, _, _ := l.admit(clk.now(), "carol", netip.Addr{}); !ok {
			t.Fatal("admit without a client refused")
		}
	}
}

func TestGateOrder(t *testing.T) {
	g := newGate(1, 2)
	ctx := context.Background()
	if err := g.acquire(ctx, prioKnown); err != nil {
		t.Fatal(err)
	}
	res := func(p int) chan error {
		c := make(chan error, 1)
		go func() { c <- g.acquire(ctx, p) }()
		return c
	}
	waitFor := func(n int) {
		for g.waiting() != n {
			runtime.Gosched()
		}
	}
	a := res(prioFailing)
	waitFor(1)
	bb := res(prioFailing)
	waitFor(2)
	c := res(prioClean) // full: takes the place of the newest failing
	if err := <-bb; !errors.Is(err, ErrOverloaded) {
		t.Fatalf("bumped: %v", err)
	}
	waitFor(2)
	if err := g.acquire(ctx, prioFailingHotUser); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("worst priority behind a full queue: %v", err)
	}
	if err := g.acquire(ctx, prioFailing); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("equal priority does not bump: %v", err)
	}
	g.release()
	if err := <-c; err != nil {
		t.Fatalf("clean: %v", err)
	}
	select {
	case err := <-a:
		t.Fatalf("older failing attempt served before the clean one: %v", err)
	default:
	}
	g.release()
	if err := <-a; err != nil {
		t.Fatalf("failing: %v", err)
	}
	// A waiter that gives up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	d := make(chan error, 1)
	go func() { d <- g.acquire(cctx, prioClean) }()
	waitFor(1)
	cancel()
	if err := <-d; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	waitFor(0)
	g.release()
	if g.free != 1 {
		t.Fatalf("free slots = %d, want 1", g.free)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(1, time.Minute, true)
	l.max = 16
	now := time.Now()
	for i := range 1000 {
		l.admit(now, fmt.Sprint("u", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if len(l.buckets) > 16 {
		t.Fatalf("limiter holds %d buckets, bound 16", len(l.buckets))
	}
	// A throttled key with a full table: still refused (evicting prefers
	// full buckets).
	l2 := newLimiter(1, time.Minute, true)
	l2.max = 4
	victim := netip.MustParseAddr("192.0.2.1")
	l2.admit(now, "v", victim) // drains the pair; the client bucket has 3 left
	tk, _, _, _ := l2.admit(now, "x", netip.MustParseAddr("192.0.2.9"))
	l2.succeeded(now, tk)
	l2.admit(now, "y", netip.MustParseAddr("192.0.2.10"))
	if _, ok, wait, limit := l2.admit(now, "v", victim); ok || wait != time.Minute || limit != "user_client" {
		t.Fatalf("victim: ok=%v wait=%v limit=%q", ok, wait, limit)
	}
	for i := range maxKnown + 10 {
		l2.succeeded(now, ticket{pair: fmt.Sprint("p:", i)})
	}
	if len(l2.known) > maxKnown {
		t.Fatalf("known pairs %d, bound %d", len(l2.known), maxKnown)
	}
}
