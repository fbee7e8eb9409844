// Command identity is the example identity service, a stand-in for an
// organisation's single sign-on (Canonical's SSO works this way with the
// bakery). It discharges the identity caveats of the admin login macaroons
// the server mints at POST /v1/admin/login/identity (POST /discharge,
// httpbakery protocol) for admins that present their secret as
// "Authorization: Bearer <secret>", declaring their user name; GET
// /publickey publishes its public key, which the server pins with
// --identity-public-key.
//
//	go run ./examples/identity --users alice=0123456789abcdef-alice
//
// Flags have LPSEC_IDENTITY_* equivalents (--users is
// LPSEC_IDENTITY_USERS).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/identity"
	"github.com/lpsec/lpsec/examples/internal/logx"
)

func main() { cli.Main("identity", run) }

func run(ctx context.Context, args []string) error {
	var o identity.Options
	fs := cli.NewFlagSet("identity", "[flags]", "The lpsec example identity service: discharges identity caveats of admin login\nmacaroons for admins holding a valid secret, declaring who they are.")
	o.RegisterFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	log, err := logx.NewLogger(os.Stderr, o.LogLevel)
	if err != nil {
		return cli.Usagef("--log-level: %v", err)
	}
	s, err := identity.Start(ctx, o, log)
	if err != nil {
		return err
	}
	fmt.Printf("lpsec identity: public key %s (server: --identity-public-key %s)\n", s.PublicKey, s.PublicKey)
	if s.CAFile != "" {
		fmt.Printf("lpsec identity: TLS certificate made by the CA in %s\n", s.CAFile)
	}
	fmt.Printf("lpsec identity: listening on %s\n", s.URL)
	select {
	case <-ctx.Done():
	case <-s.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Close(sctx)
}
