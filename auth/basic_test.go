package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/optiontest"
	"golang.org/x/crypto/bcrypt"
)

func TestVerify(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4+",bob:"+argonLow)
	ctx := context.Background()
	for _, user := range []string{"alice", "bob"} {
		if err := b.Verify(ctx, user, testPassword); err != nil {
			t.Errorf("%s with the right password: %v", user, err)
		}
	}
	for name, tc := range map[string]struct{ user, password string }{
		"wrong password":          {"alice", "wrong"},
		"wrong argon2id":          {"bob", "wrong"},
		"unknown user":            {"mallory", testPassword},
		"empty user":              {"", testPassword},
		"empty password":          {"alice", ""},
		"case differs":            {"Alice", testPassword},
		"NUL in password":         {"alice", testPassword + "\x00"},
		"control in user":         {"alice\n", testPassword},
		"invalid UTF-8":           {"alice", "\xff" + testPassword},
		"password over 1024 B":    {"alice", strings.Repeat("a", maxPassword+1)},
		"password prefix":         {"alice", testPassword[:len(testPassword)-1]},
		"another user's password": {"alice", "other"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := b.Verify(ctx, tc.user, tc.password); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
}

// bcrypt hashes only the first 72 bytes: a longer password whose first 72
// bytes are right must still fail.
func TestBcryptLongPasswordNeverMatches(t *testing.T) {
	pw72 := strings.Repeat("p", 72)
	h, err := bcrypt.GenerateFromPassword([]byte(pw72), 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _, w := newTestBasic(t, "alice:"+string(h))
	if err := b.Verify(context.Background(), "alice", pw72); err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
	if err := b.Verify(context.Background(), "alice", pw72+"x"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("73-byte password with the right prefix: err = %v", err)
	}
	// The refusal costs the same work as any wrong password.
	if got := w.take(); !slices.Equal(got, []string{"bcrypt cost=4", "bcrypt cost=4"}) {
		t.Fatalf("work = %v", got)
	}
	if _, err := HashPassword(pw72+"x", HashBcrypt(4)); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("HashPassword 73 bytes bcrypt: err = %v", err)
	}
}

// The deterministic proof of "no user enumeration": an unknown user makes
// the same hash computations (algorithm and every cost parameter) as a
// known user with a wrong password.
func TestUnknownUserDoesSameWork(t *testing.T) {
	hashes(t)
	ctx := context.Background()
	for name, spec := range map[string]string{
		"bcrypt only":   "alice:" + bcrypt4,
		"argon2id only": "bob:" + argonLow,
	} {
		t.Run(name, func(t *testing.T) {
			b, _, w := newTestBasic(t, spec, WithoutCache())
			known, _, _ := strings.Cut(spec, ":")
			_ = b.Verify(ctx, known, "wrong password")
			wrong := w.take()
			for _, unknown := range []string{"mallory", "eve", strings.Repeat("z", 200)} {
				_ = b.Verify(ctx, unknown, "wrong password")
				if got := w.take(); !slices.Equal(got, wrong) || len(got) != 1 {
					t.Fatalf("unknown %q did %v, known user with wrong password did %v", unknown, got, wrong)
				}
			}
		})
	}
	// With users of different costs, each unknown name does the work of
	// one real user, always the same for the same name.
	t.Run("mixed", func(t *testing.T) {
		b, _, w := newTestBasic(t, "alice:"+bcrypt4+",bob:"+argonLow+",carol:"+bcrypt5, WithoutCache())
		real := map[string]bool{}
		for _, u := range []string{"alice", "bob", "carol"} {
			_ = b.Verify(ctx, u, "wrong")
			real[w.take()[0]] = true
		}
		seen := map[string]bool{}
		for i := range 64 {
			name := fmt.Sprintf("unknown-%d", i)
			_ = b.Verify(ctx, name, "wrong")
			first := w.take()
			_ = b.Verify(ctx, name, "wrong again")
			again := w.take()
			if len(first) != 1 || !real[first[0]] || !slices.Equal(first, again) {
				t.Fatalf("%s did %v then %v; real users do one of %v", name, first, again, real)
			}
			seen[first[0]] = true
		}
		if len(seen) != len(real) {
			t.Errorf("64 unknown names used only %v of %v", seen, real)
		}
	})
	t.Run("no users", func(t *testing.T) {
		b, err := NewBasic(Users{})
		if err != nil {
			t.Fatal(err)
		}
		w := &workLog{}
		b.onHash = w.record
		_ = b.Verify(ctx, "anyone", "x")
		if got := w.take(); !slices.Equal(got, []string{"bcrypt cost=10"}) {
			t.Fatalf("work = %v", got)
		}
	})
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword(testPassword, HashArgon2id(64, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash = %q", h)
	}
	hb, err := HashPassword(testPassword, HashBcrypt(4))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := newTestBasic(t, "a:"+h+",b:"+hb)
	for _, u := range []string{"a", "b"} {
		if err := b.Verify(context.Background(), u, testPassword); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	var msgs []string
	for name, tc := range map[string]struct {
		password string
		opts     []HashOption
		want     error
		msg      string
	}{
		"empty":              {"", nil, ErrInvalidPassword, "auth: password cannot be hashed: empty, longer than 1024 bytes, not UTF-8 or holding control characters"},
		"control characters": {"a\x07b", nil, ErrInvalidPassword, "auth: password cannot be hashed: empty, longer than 1024 bytes, not UTF-8 or holding control characters"},
		"invalid UTF-8":      {"\xc3", nil, ErrInvalidPassword, "auth: password cannot be hashed: empty, longer than 1024 bytes, not UTF-8 or holding control characters"},
		"bcrypt cost 3":      {"pw", []HashOption{HashBcrypt(3)}, ErrInvalidOption, "auth: invalid option: HashBcrypt: bcrypt cost 3 outside [4, 14]"},
		"bcrypt cost 20":     {"pw", []HashOption{HashBcrypt(20)}, ErrInvalidOption, "auth: invalid option: HashBcrypt: bcrypt cost 20 outside [4, 14]"},
		"argon2id 1 GiB":     {"pw", []HashOption{HashArgon2id(1<<20, 1, 1)}, ErrInvalidOption, "auth: invalid option: HashArgon2id: argon2id m=1048576,t=1,p=1 outside m in [8p, 262144], t in [1, 16], p in [1, 16]"},
		"argon2id 0 lanes":   {"pw", []HashOption{HashArgon2id(64, 1, 0)}, ErrInvalidOption, "auth: invalid option: HashArgon2id: argon2id m=64,t=1,p=0 outside m in [8p, 262144], t in [1, 16], p in [1, 16]"},
		"argon2id 0 passes":  {"pw", []HashOption{HashArgon2id(64, 0, 1)}, ErrInvalidOption, "auth: invalid option: HashArgon2id: argon2id m=64,t=0,p=1 outside m in [8p, 262144], t in [1, 16], p in [1, 16]"},
		"both algorithms":    {"pw", []HashOption{HashBcrypt(4), HashArgon2id(64, 1, 1)}, ErrInvalidOption, "auth: invalid option: HashArgon2id: cannot be combined with HashBcrypt"},
		"zero option":        {"pw", []HashOption{{}}, ErrInvalidOption, "auth: invalid option: zero HashOption given to HashPassword"},
	} {
		msgs = append(msgs, tc.msg)
		t.Run(name, func(t *testing.T) {
			_, err := HashPassword(tc.password, tc.opts...)
			if !errors.Is(err, tc.want) || err.Error() != tc.msg {
				t.Fatalf("err = %v\nwant %v: %s", err, tc.want, tc.msg)
			}
		})
	}
	optiontest.RequireEveryOption(t, "HashOption", msgs)
}

func TestCache(t *testing.T) {
	hashes(t)
	ctx := context.Background()
	b, clk, w := newTestBasic(t, "alice:"+bcrypt4, WithCache(time.Minute, 2))
	if err := b.Verify(ctx, "alice", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx, "alice", testPassword); err != nil {
		t.Fatal(err)
	}
	if got := len(w.take()); got != 1 {
		t.Fatalf("two correct logins computed %d hashes, want 1 (second from cache)", got)
	}
	t.Run("failures are not cached", func(t *testing.T) {
		for range 2 {
			if err := b.Verify(ctx, "alice", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		if got := len(w.take()); got != 2 {
			t.Fatalf("two wrong passwords computed %d hashes, want 2", got)
		}
	})
	t.Run("TTL", func(t *testing.T) {
		clk.advance(59 * time.Second)
		_ = b.Verify(ctx, "alice", testPassword)
		if got := len(w.take()); got != 0 {
			t.Fatalf("within TTL computed %d hashes", got)
		}
		clk.advance(time.Second)
		_ = b.Verify(ctx, "alice", testPassword)
		if got := len(w.take()); got != 1 {
			t.Fatalf("after TTL computed %d hashes, want 1", got)
		}
	})
	// The cache's map type already rules out a stored password; what can
	// go wrong is the key: unkeyed or fixed, a copy of the memory would let
	// anyone test password guesses offline at SHA-256 speed.
	t.Run("keyed per process", func(t *testing.T) {
		if b.cache.key == ([32]byte{}) {
			t.Fatal("cache HMAC key is all zero")
		}
		want := b.cache.sum("alice", testPassword, bcrypt4)
		b.cache.mu.Lock()
		_, ok := b.cache.entries[want]
		n := len(b.cache.entries)
		b.cache.mu.Unlock()
		if !ok || n != 1 {
			t.Fatalf("cache holds %d entries, want exactly the keyed sum of alice's login", n)
		}
		other := newSuccessCache(time.Minute, 1)
		if other.key == b.cache.key || other.sum("alice", testPassword, bcrypt4) == want {
			t.Fatal("two caches share a key: the sums can be recomputed without this process's secret")
		}
		if b.cache.sum("alice", testPassword+"x", bcrypt4) == want || b.cache.sum("alice", testPassword, bcrypt4Other) == want {
			t.Fatal("the sum ignores the password or the stored hash")
		}
	})
	t.Run("size bound", func(t *testing.T) {
		c := newSuccessCache(time.Minute, 3)
		now := clk.now()
		for i := range 10 {
			c.add(c.sum(fmt.Sprint("u", i), "p", "h"), now.Add(time.Duration(i)*time.Second))
		}
		if c.len() != 3 {
			t.Fatalf("cache holds %d entries, bound 3", c.len())
		}
		if !c.hit(c.sum("u9", "p", "h"), now.Add(10*time.Second)) || c.hit(c.sum("u0", "p", "h"), now.Add(10*time.Second)) {
			t.Fatal("eviction dropped the newest instead of the oldest")
		}
	})
	t.Run("changed user invalidates", func(t *testing.T) {
		_ = b.Verify(ctx, "alice", testPassword)
		w.take()
		users, _ := ParseUsers("alice:" + bcrypt4Other)
		if err := b.SetUsers(users); err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(ctx, "alice", testPassword); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("old password after change: %v", err)
		}
		if err := b.Verify(ctx, "alice", "other"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		// A cache entry made under the old hash cannot be hit again even
		// if it survived the reset (a check running during SetUsers).
		b.cache.add(b.cache.sum("alice", testPassword, bcrypt4), clk.now())
		if err := b.Verify(ctx, "alice", testPassword); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("stale entry: %v", err)
		}
	})
	t.Run("removed user invalidates", func(t *testing.T) {
		_ = b.Verify(ctx, "alice", "other")
		users, _ := ParseUsers("bob:" + bcrypt4)
		if err := b.SetUsers(users); err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(ctx, "alice", "other"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("removed user: %v", err)
		}
	})
}

func TestSetUsersRefusesAndKeepsOld(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4)
	u, _ := ParseUsers("bob:$2y$13$" + bcryptSample[7:])
	low, _ := ParseUsers("bob:" + bcrypt4)
	strict, err := NewBasic(u)
	if err != nil {
		t.Fatal(err)
	}
	before := strict.users.Load()
	if err := strict.SetUsers(low); !errors.Is(err, ErrInvalidUsers) {
		t.Fatalf("SetUsers below minimum: %v", err)
	}
	if strict.users.Load() != before {
		t.Fatal("a refused SetUsers replaced the users")
	}
	if err := b.Verify(context.Background(), "alice", testPassword); err != nil {
		t.Fatal(err)
	}
}

// Users are replaced while checks run: every check sees either the old or
// the new users, never a mix or nothing (run with -race).
func TestSetUsersConcurrent(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithoutCache())
	oldUsers, _ := ParseUsers("alice:" + bcrypt4)
	newUsers, _ := ParseUsers("alice:" + bcrypt4 + ",bob:" + bcrypt4)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Verify(ctx, "alice", testPassword); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 20 {
		u := oldUsers
		if i%2 == 0 {
			u = newUsers
		}
		if err := b.SetUsers(u); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("alice refused during reload: %v", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithConcurrency(1, 1), WithoutCache())
	entered := make(chan struct{})
	release := make(chan struct{})
	b.onHash = func(string) {
		entered <- struct{}{}
		<-release
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- b.Verify(ctx, "alice", testPassword) }()
	<-entered // the only slot is taken

	// One caller may wait; it gives up when its context ends.
	waitCtx, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { second <- b.Verify(waitCtx, "alice", testPassword) }()
	for b.gate.waiting() != 1 {
		runtime.Gosched()
	}
	// The queue is full: refused at once.
	if err := b.Verify(ctx, "alice", testPassword); !errors.Is(err, ErrOverloaded) || !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("third caller: err = %v, want ErrOverloaded and ErrInvalidCredentials", err)
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("cancelled waiter: err = %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first caller: %v", err)
	}
}
