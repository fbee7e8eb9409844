package macaroon_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon"
)

// Sessions that end: a logged-out macaroon is refused, a user removed from
// the admin list is refused at the next request, and a holder narrows a
// macaroon to fewer operations.
func ExampleWithRevocations() {
	ctx := context.Background()
	key, _ := macaroon.GenerateKey()
	keys, _ := macaroon.NewMemoryRootKeyStore()
	revoked, _ := macaroon.NewMemoryRevocationStore() // several instances: macaroonpg.NewRevocationStore
	admins := map[string]bool{"alice": true, "bob": true}
	svc, err := macaroon.NewService("https://livepatch.example", key, keys,
		macaroon.WithRevocations(revoked),
		macaroon.WithCheckUser(func(_ context.Context, user string) error {
			if !admins[user] {
				return errors.New("not an admin")
			}
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	list := bakery.Op{Entity: "admin", Action: "list"}
	create := bakery.Op{Entity: "admin", Action: "create"}
	verify := func(m *bakery.Macaroon, op bakery.Op) error {
		_, err := svc.Verify(ctx, []macaroon.Slice{{m.M()}}, op)
		return err
	}

	alice, _ := svc.MintLogin(ctx, "alice", time.Hour, list, create)
	narrowed := alice.Clone()
	_ = narrowed.AddCaveat(ctx, macaroon.AllowCaveat("list"), nil, nil)
	fmt.Println("narrowed, list:", verify(narrowed, list))
	fmt.Println("narrowed, create:", errors.Is(verify(narrowed, create), macaroon.ErrDenied))

	g, _ := svc.Verify(ctx, []macaroon.Slice{{alice.M()}}, list)
	_ = svc.Logout(ctx, g)
	fmt.Println("after logout:", errors.Is(verify(alice, list), macaroon.ErrRevoked))

	bob, _ := svc.MintLogin(ctx, "bob", time.Hour, list)
	delete(admins, "bob")
	fmt.Println("bob removed:", errors.Is(verify(bob, list), macaroon.ErrUserRefused))
	// Output:
	// narrowed, list: <nil>
	// narrowed, create: true
	// after logout: true
	// bob removed: true
}
