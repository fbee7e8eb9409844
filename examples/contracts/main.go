// Command contracts is the example entitlement service, a stand-in for a
// vendor's contracts server. It knows contract tokens and discharges the
// third-party caveats of resource macaroons (POST /discharge, httpbakery
// protocol) for clients that present a valid one as
// "Authorization: Bearer <contract token>"; GET /publickey publishes its
// public key, which the server pins with --contracts-public-key.
//
//	go run ./examples/contracts --contract-tokens 0123456789abcdef-contract
//
// Flags have LPSEC_CONTRACTS_* equivalents (--contract-tokens is
// LPSEC_CONTRACTS_CONTRACT_TOKENS).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/contracts"
	"github.com/lpsec/lpsec/examples/internal/logx"
)

func main() { cli.Main("contracts", run) }

func run(ctx context.Context, args []string) error {
	var o contracts.Options
	fs := cli.NewFlagSet("contracts", "[flags]", "The lpsec example entitlement (contracts) service: discharges resource macaroons\nfor holders of a valid contract token.")
	o.RegisterFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	log, err := logx.NewLogger(os.Stderr, o.LogLevel)
	if err != nil {
		return cli.Usagef("--log-level: %v", err)
	}
	s, err := contracts.Start(ctx, o, log)
	if err != nil {
		return err
	}
	// "listening on" comes last, as the server's does: waiting for it
	// means every start-up line has been printed.
	fmt.Printf("lpsec contracts: public key %s (server: --contracts-public-key %s)\n", s.PublicKey, s.PublicKey)
	if s.CAFile != "" {
		fmt.Printf("lpsec contracts: TLS certificate made by the CA in %s\n", s.CAFile)
	}
	fmt.Printf("lpsec contracts: listening on %s\n", s.URL)
	select {
	case <-ctx.Done():
	case <-s.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Close(sctx)
}
