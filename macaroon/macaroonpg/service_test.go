package macaroonpg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/internal/pgtest"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Two service instances sharing one PostgreSQL database: a macaroon minted
// by one verifies on the other, and a revocation on one reaches the other
// (cache disabled here, so at once).
func TestServicesSharePostgresRootKeys(t *testing.T) {
	url := pgtest.Database(t)
	kekBytes := make([]byte, 32)
	rand.Read(kekBytes)
	kek, err := NewKeyEncryptionKey(kekBytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := lpmac.GenerateKey()
	ctx := context.Background()
	opAdminRead := bakery.Op{Entity: "admin", Action: "read"}
	instance := func() (*lpmac.Service, *RootKeyStore) {
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		store, err := NewRootKeyStore(db, kek, lpmac.WithoutRootKeyCache())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		svc, err := lpmac.NewService("https://lpsec.example", key, store)
		if err != nil {
			t.Fatal(err)
		}
		return svc, store
	}
	a, storeA := instance()
	b, _ := instance()
	m, err := a.MintLogin(ctx, "alice", time.Hour, opAdminRead)
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.Verify(ctx, []lpmac.Slice{{m.M()}}, opAdminRead)
	if err != nil || g.User != "alice" {
		t.Fatalf("instance b: %+v, %v", g, err)
	}
	_, id, err := storeA.RootKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := storeA.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, []lpmac.Slice{{m.M()}}, opAdminRead); !errors.Is(err, lpmac.ErrUnknownRootKey) {
		t.Fatalf("instance b after revoke on a: %v, want lpmac.ErrUnknownRootKey", err)
	}
}
