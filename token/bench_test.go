package token

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// Baselines are the raw dependency doing the same work, or what servers do
// today: keep tokens in plain text and look them up directly.

func BenchmarkGenerate(b *testing.B) {
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := Generate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			u, err := uuid.NewRandom()
			if err != nil {
				b.Fatal(err)
			}
			_ = u.String()
		}
	})
}

func BenchmarkParse(b *testing.B) {
	const s = "0f8fad5b-d9cb-469f-a165-70867728950e"
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := uuid.Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateMemory: AuthenticateMachine (parse, SHA-256, map
// lookup, LastSeen update) against a plaintext map under a mutex.
func BenchmarkAuthenticateMemory(b *testing.B) {
	ctx := context.Background()
	s := mustMemory(b)
	reg, _, _ := s.IssueRegistration(ctx, Registration{Tier: "t", Name: "n", Uses: Unlimited})
	var tok string
	for i := range 1000 {
		t, _, err := s.Register(ctx, reg, fmt.Sprint("machine-", i))
		if err != nil {
			b.Fatal(err)
		}
		tok = t
	}
	b.Run("lpsec", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AuthenticateMachine(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		var mu sync.Mutex
		plain := map[string]Machine{tok: {Machine: "m"}}
		for b.Loop() {
			mu.Lock()
			_, ok := plain[tok]
			mu.Unlock()
			if !ok {
				b.Fatal("not found")
			}
		}
	})
}
