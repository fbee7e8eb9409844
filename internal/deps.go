//go:build lpsecdeps

// This file pins the module's chosen dependencies while the packages that
// use them are being written; it never builds.
package internal

import (
	_ "github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	_ "github.com/go-macaroon-bakery/macaroon-bakery/v3/httpbakery"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/smallstep/pkcs7"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/net/http/httpproxy"
	_ "gopkg.in/macaroon.v2"
)
