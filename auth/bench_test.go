package auth

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// A production-cost hash, as `htpasswd -nbBC 10` writes it.
const (
	benchHash     = "$2y$10$BbSkXKBDqLFPFhX65fm7mexEJJuXZKWpJEZs62PoHKgteqWWbHhq2"
	benchPassword = "correct horse battery staple"
)

func benchBasic(b *testing.B, opts ...Option) *Basic {
	users, err := ParseUsers("admin:" + benchHash)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewBasic(users, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// lpsec: an unknown user; baseline: a known user with a wrong password.
// The ratio must stay within 0.9–1.1: timing does not tell which users
// exist.
func BenchmarkVerifyUnknownUser(b *testing.B) {
	v := benchBasic(b, WithoutCache())
	ctx := context.Background()
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if v.Verify(ctx, "nobody", "wrong password") == nil {
				b.Fatal("accepted")
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if v.Verify(ctx, "admin", "wrong password") == nil {
				b.Fatal("accepted")
			}
		}
	})
}

// lpsec: the same correct credentials again (a success-cache hit);
// baseline: the same check without the cache (one bcrypt at cost 10).
func BenchmarkVerifyCacheHit(b *testing.B) {
	ctx := context.Background()
	b.Run("lpsec", func(b *testing.B) {
		v := benchBasic(b)
		if err := v.Verify(ctx, "admin", benchPassword); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := v.Verify(ctx, "admin", benchPassword); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		v := benchBasic(b, WithoutCache())
		for b.Loop() {
			if err := v.Verify(ctx, "admin", benchPassword); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// lpsec: Verify without cache; baseline: x/crypto/bcrypt alone. Shows the
// overhead of parsing, throttling, slots and logging.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("lpsec", func(b *testing.B) {
		v := benchBasic(b, WithoutCache())
		for b.Loop() {
			if err := v.Verify(ctx, "admin", benchPassword); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if err := bcrypt.CompareHashAndPassword([]byte(benchHash), []byte(benchPassword)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// lpsec: taking and giving back a hash slot through the priority gate,
// with GOMAXPROCS callers in parallel; baseline: a buffered channel used
// as a semaphore, what the gate replaced. Either is noise beside one
// bcrypt hash (BenchmarkVerify), which is the point.
func BenchmarkHashSlot(b *testing.B) {
	ctx := context.Background()
	b.Run("lpsec", func(b *testing.B) {
		g := newGate(2, 64)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := g.acquire(ctx, prioClean); err != nil {
					b.Fatal(err)
				}
				g.release()
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		slots := make(chan struct{}, 2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				slots <- struct{}{}
				<-slots
			}
		})
	})
}
