package token

import (
	"context"
	"fmt"
	"os"
	"strconv"
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

// BenchmarkListMachinesPage: one ListMachines page of 1,000 records from
// the middle of a memory store of 200,000 machines (LPSEC_LIST_N to change)
// against the same page from a store of 2,000 (baseline): the cost, and so
// how long the page holds the store's read lock, grows with the page, not
// with the records held. Authentication takes the same read lock, so it
// never waits for a page at all; only writers (registrations, a LastSeen
// update once a minute per token) wait, for at most one page. Issue 14: a
// full list of 1M machines held the store's only lock for 107-169 ms.
func BenchmarkListMachinesPage(b *testing.B) {
	ctx := context.Background()
	n := 200000
	if v := os.Getenv("LPSEC_LIST_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2000 {
			b.Fatalf("LPSEC_LIST_N=%q (at least 2000)", v)
		}
	}
	fill := func(n int) *MemoryStore {
		s, err := NewMemoryStore()
		if err != nil {
			b.Fatal(err)
		}
		reg, _, err := s.IssueRegistration(ctx, Registration{Tier: "t", Name: "n", Uses: Unlimited})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, _, err := s.Register(ctx, reg, fmt.Sprint("m", i)); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	page := func(s *MemoryStore, after string) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				if p, _, err := s.ListMachines(ctx, after, MaxListLimit); err != nil || len(p) != MaxListLimit {
					b.Fatal(len(p), err)
				}
			}
		}
	}
	b.Run("lpsec", page(fill(n), strconv.Itoa(n/2)))
	b.Run("baseline", page(fill(2000), "500"))
}
