package macaroonpg_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/macaroonpg"
)

// Several server instances share root keys through PostgreSQL. The keys are
// encrypted under a key-encryption key held outside the database (made with
// `openssl rand -base64 32`); a revocation reaches every instance within
// CacheTTL.
func ExampleNewRootKeyStore() {
	ctx := context.Background()
	kek, err := macaroonpg.ParseKeyEncryptionKey(os.Getenv("LPSEC_MACAROON_KEK"))
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := macaroonpg.NewRootKeyStore(db, kek,
		macaroon.WithMaxTTL(240*time.Hour),    // at least the Service's
		macaroon.WithCacheTTL(30*time.Second), // the revocation bound
	)
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
