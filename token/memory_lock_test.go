package token

import (
	"context"
	"testing"
	"time"
)

// TestListingDoesNotBlockAuthentication: while a reader holds the memory
// store's lock, as ListMachines does while it copies one page, machine
// tokens still authenticate (they take the same read lock), and only
// LastSeen updates, once a minute per token, need the write lock. With the
// single mutex of before, a list of 1M machines stalled every check for
// 107-169 ms (issue 14).
func TestListingDoesNotBlockAuthentication(t *testing.T) {
	ctx := context.Background()
	s := mustMemory(t)
	reg, _ := mustIssueRegistration(t, s, Registration{Tier: "t", Name: "n", Uses: Unlimited})
	tok, _ := mustRegister(t, s, reg, "m")
	if _, err := s.AuthenticateMachine(ctx, tok); err != nil { // records LastSeen
		t.Fatal(err)
	}
	s.mu.RLock() // a listing in progress
	done := make(chan error, 1)
	go func() {
		_, err := s.AuthenticateMachine(ctx, tok)
		done <- err
	}()
	select {
	case err := <-done:
		s.mu.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a failure bound, not synchronisation
		s.mu.RUnlock()
		t.Fatal("AuthenticateMachine waited for a reader of the store")
	}
}
