package tokenpg_test

import (
	"context"
	"database/sql"
	"log"
	"log/slog"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/tokenpg"
)

func ExampleNewStore() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://lpsec@db.example/lpsec")
	if err != nil {
		log.Fatal(err)
	}
	store, err := tokenpg.NewStore(db, token.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// Listings from memory, kept fresh by database notifications, until
	// ctx ends.
	go store.Follow(ctx)
	syncToken, _, err := store.IssueSync(ctx, token.Sync{Tier: "stable", Name: "mirror-eu"})
	if err != nil {
		log.Fatal(err)
	}
	_ = syncToken // give it to the other server's admin, once
}
