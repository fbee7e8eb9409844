package token

import (
	"context"
	"testing"
)

func mustMemory(t testing.TB, opts ...Option) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustIssueRegistration(t *testing.T, s Store, r Registration) (string, Registration) {
	t.Helper()
	tok, rec, err := s.IssueRegistration(context.Background(), r)
	if err != nil {
		t.Fatalf("IssueRegistration: %v", err)
	}
	return tok, rec
}

func mustRegister(t *testing.T, s Store, reg, machine string) (string, Machine) {
	t.Helper()
	tok, m, err := s.Register(context.Background(), reg, machine)
	if err != nil {
		t.Fatalf("Register(%s): %v", machine, err)
	}
	return tok, m
}
