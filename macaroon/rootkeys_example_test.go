package macaroon_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lpsec/lpsec/macaroon"
)

// A single-instance server keeps its root keys in memory: a new minting key
// every 24 hours, each kept for verification 240 hours after its last use.
func ExampleNewMemoryRootKeyStore() {
	ctx := context.Background()
	store, err := macaroon.NewMemoryRootKeyStore(
		macaroon.WithRotationPeriod(24*time.Hour),
		macaroon.WithMaxTTL(240*time.Hour),
	)
	if err != nil {
		log.Fatal(err)
	}
	key, id, err := store.RootKey(ctx) // what the bakery mints with
	if err != nil {
		log.Fatal(err)
	}
	got, err := store.Get(ctx, id) // what the bakery verifies with
	fmt.Println(len(key), len(id), bytes.Equal(got, key), err)

	// Revoking a key invalidates every macaroon minted with it.
	if err := store.Revoke(ctx, id); err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(ctx, id)
	fmt.Println(err)
	// Output:
	// 32 16 true <nil>
	// not found
}

// Options say which constructors take them: the cache TTL belongs to the
// PostgreSQL store (macaroonpg), so the memory store refuses it.
func ExampleWithCacheTTL() {
	_, err := macaroon.NewMemoryRootKeyStore(macaroon.WithCacheTTL(time.Minute))
	fmt.Println(err)
	// Output:
	// macaroon: invalid option: WithCacheTTL does not apply to NewMemoryRootKeyStore
}
