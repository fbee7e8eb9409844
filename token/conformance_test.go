package token_test

import (
	"testing"

	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/internal/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, opts ...token.Option) token.Store { return memoryStore(t, opts...) },
		OpenPair: func(t *testing.T, opts ...token.Option) (token.Store, token.Store) {
			// One process, one store: both "instances" are the same.
			s := memoryStore(t, opts...)
			return s, s
		},
	})
}

func memoryStore(t *testing.T, opts ...token.Option) *token.MemoryStore {
	t.Helper()
	s, err := token.NewMemoryStore(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
