package macaroon_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/lpsec/lpsec/macaroon"
)

// A single-instance server keeps its root keys in memory: a new minting key
// every 24 hours, each kept for verification 240 hours after its last use.
func ExampleNewMemoryRootKeyStore() {
	ctx := context.Background()
	store, err := macaroon.NewMemoryRootKeyStore(macaroon.RootKeyPolicy{
		RotationPeriod: 24 * time.Hour,
		MaxTTL:         240 * time.Hour,
	})
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

// Several server instances share root keys through PostgreSQL. The keys are
// encrypted under a key-encryption key held outside the database (made with
// `openssl rand -base64 32`); a revocation reaches every instance within
// CacheTTL.
func ExampleNewPostgresRootKeyStore() {
	ctx := context.Background()
	kek, err := macaroon.ParseKeyEncryptionKey(os.Getenv("LPSEC_MACAROON_KEK"))
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := macaroon.NewPostgresRootKeyStore(db, kek, macaroon.RootKeyPolicy{
		MaxTTL:   240 * time.Hour,  // at least the Service's MaxTTL
		CacheTTL: 30 * time.Second, // the revocation bound
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// Pass store as the root-key store of the macaroon Service (or of a
	// bakery.Bakery).
	_, id, err := store.RootKey(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("minting with root key %x\n", id)
}
