package macaroon_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/macaroon"
)

// An admin endpoint needs one operation; the middleware refuses everything
// else with the status table's answer and hands the Grant to the handler.
func ExampleService_Require() {
	svc := newService("", nil)
	list := bakery.Op{Entity: "patches", Action: "list"}
	h := svc.Require(list)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, _ := macaroon.GrantFromContext(r.Context())
		fmt.Fprintf(w, "patches for %s", g.User)
	}))

	serve := func(authorization string) {
		r := httptest.NewRequest("GET", "/v1/admin/patches", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), strings.TrimSpace(w.Body.String()))
	}
	serve("")
	m, err := svc.MintLogin(context.Background(), "alice", time.Hour, list)
	if err != nil {
		log.Fatal(err)
	}
	enc, err := macaroon.EncodeSlice(macaroon.Slice{m.M()})
	if err != nil {
		log.Fatal(err)
	}
	serve("Macaroon " + enc)
	// Output:
	// 401 Macaroon {"code":"unauthorized","error":"macaroon required"}
	// 200  patches for alice
}

// A resource that needs a third party's discharge: without one, the
// middleware answers httpbakery's discharge-required error with a fresh
// macaroon, which stock bakery clients (Go httpbakery.Client, Python
// macaroonbakery) discharge and send back on their own.
func ExampleWithDischargeRequired() {
	const contracts = "https://contracts.example"
	tpKey, err := macaroon.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	svc := newService(contracts, &tpKey.Public)
	register := bakery.Op{Entity: "machine/0123", Action: "register"}
	mw, err := macaroon.NewMiddleware(svc, macaroon.WithDischargeRequired(
		func(ctx context.Context, r *http.Request, ops []bakery.Op) (*bakery.Macaroon, error) {
			return svc.MintResource(ctx, contracts, "entitled-machine 0123", 10*time.Minute, ops...)
		}, ""))
	if err != nil {
		log.Fatal(err)
	}
	h := mw.Require(register)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "registered")
	}))

	r := httptest.NewRequest("PUT", "/v1/client/0123", nil)
	r.Header.Set(macaroon.BakeryProtocolHeader, "3") // what bakery clients send
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	dr, err := macaroon.ParseDischargeRequired(w.Result())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), dr.CookieNameSuffix, dr.MacaroonPath)
	for _, c := range dr.Macaroon.M().Caveats() {
		if c.Location != "" {
			fmt.Println("discharge at", c.Location)
		}
	}
	// Output:
	// 401 Macaroon auth /
	// discharge at https://contracts.example
}
