package macaroon_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon"
)

// newService returns a Service with an in-memory root-key store, pinning
// the third party at thirdParty to tpKey (none if tpKey is nil).
func newService(thirdParty string, tpKey *bakery.PublicKey) *macaroon.Service {
	key, err := macaroon.GenerateKey() // in production: macaroon.ParseKeyPair(config)
	if err != nil {
		log.Fatal(err)
	}
	store, err := macaroon.NewMemoryRootKeyStore() // several instances: macaroonpg.NewRootKeyStore
	if err != nil {
		log.Fatal(err)
	}
	var opts []macaroon.Option
	if tpKey != nil {
		opts = append(opts, macaroon.WithThirdParty(thirdParty, tpKey))
	}
	svc, err := macaroon.NewService("https://livepatch.example", key, store, opts...)
	if err != nil {
		log.Fatal(err)
	}
	return svc
}

// An admin who logged in with Basic Auth gets a login macaroon; later
// requests present it in an Authorization header.
func ExampleService_MintLogin() {
	ctx := context.Background()
	svc := newService("", nil)
	read := bakery.Op{Entity: "admin", Action: "read"}

	m, err := svc.MintLogin(ctx, "alice", 8*time.Hour, read)
	if err != nil {
		log.Fatal(err)
	}
	enc, err := macaroon.EncodeSlice(macaroon.Slice{m.M()})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/admin/patches", nil)
	r.Header.Set("Authorization", "Macaroon "+enc)

	g, err := svc.VerifyRequest(ctx, r, read)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.User, g.Ops)
	// Output: alice [{admin read}]
}

// Verification fails with an error that says what to do next.
func ExampleService_Verify() {
	ctx := context.Background()
	svc := newService("", nil)
	m, err := svc.MintLogin(ctx, "alice", 0, bakery.Op{Entity: "admin", Action: "read"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = svc.Verify(ctx, []macaroon.Slice{{m.M()}}, bakery.Op{Entity: "admin", Action: "write"})
	switch {
	case errors.Is(err, macaroon.ErrMissing), errors.Is(err, macaroon.ErrExpired), errors.Is(err, macaroon.ErrUnknownRootKey):
		fmt.Println("401: log in again")
	case errors.Is(err, macaroon.ErrDischargeRequired):
		fmt.Println("401: get a discharge")
	case errors.Is(err, macaroon.ErrUnavailable):
		fmt.Println("503")
	case err != nil:
		fmt.Println("403:", err)
	}
	// Output: 403: macaroon: denied: operation admin:write not granted
}

// A contracts service discharges resource macaroons for entitled
// machines; the client fetches the discharge over https from that
// allow-listed location only.
func ExampleDischarger() {
	ctx := context.Background()
	tpKey, err := macaroon.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	d, err := macaroon.NewDischarger(tpKey, func(ctx context.Context, r *http.Request, condition string) error {
		if condition != "entitled livepatch" {
			return errors.New("not entitled")
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	contracts := httptest.NewTLSServer(d)
	defer contracts.Close()

	svc := newService(contracts.URL, &tpKey.Public)
	register := bakery.Op{Entity: "machine", Action: "register"}
	m, err := svc.MintResource(ctx, contracts.URL, "entitled livepatch", time.Hour, register)
	if err != nil {
		log.Fatal(err)
	}

	client, err := macaroon.NewDischargeClient([]string{contracts.URL}, macaroon.WithHTTPClient(contracts.Client()))
	if err != nil {
		log.Fatal(err)
	}
	ms, err := client.DischargeAll(ctx, m)
	if err != nil {
		log.Fatal(err)
	}
	g, err := svc.Verify(ctx, []macaroon.Slice{ms}, register)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("user %q, %d macaroons, ops %v\n", g.User, len(ms), g.Ops)
	// Output: user "", 2 macaroons, ops [{machine register}]
}
