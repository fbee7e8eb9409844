package macaroon

import (
	"context"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
)

// RootKeyStore holds the root keys that macaroons are minted with.
//
// RootKey returns the key to mint new macaroons with (rotating it when it is
// too old); Get returns the key with the given id for verification. Get must
// return an error whose cause is exactly bakery.ErrNotFound (not wrapped with
// %w: the bakery compares with errgo.Cause) for an unknown or revoked id, and
// any other error when the store cannot answer (the Service then fails closed
// with ErrUnavailable-style errors, never success).
//
// Revoke removes a key so that every macaroon minted with it stops verifying.
type RootKeyStore interface {
	bakery.RootKeyStore
	Revoke(ctx context.Context, id []byte) error
}
