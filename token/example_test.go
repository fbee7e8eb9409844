package token_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/lpsec/lpsec/token"
)

// A registration token, exchanged by a machine for its machine token, which
// then authenticates the machine's requests.
func Example() {
	ctx := context.Background()
	store, err := token.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}

	// Admin: a token that registers up to 10 machines into "stable".
	regToken, reg, err := store.IssueRegistration(ctx, token.Registration{
		Tier: "stable", Name: "datacentre-1", Uses: 10,
		ValidUntil: time.Now().Add(30 * 24 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registration uses left:", reg.UsesLeft)

	// Client: PUT /v1/client/{machine} with the registration token.
	machineToken, m, err := store.Register(ctx, regToken, "3f6c0f0e5d9a4c1b8e2f7a6b5c4d3e2f")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("machine tier:", m.Tier)

	// Client: every later request carries the machine token.
	m, err = store.AuthenticateMachine(ctx, machineToken)
	fmt.Println("authenticated:", err == nil, m.Machine)

	// Admin: listing shows records, never tokens.
	list, _ := store.ListRegistrations(ctx)
	fmt.Println("registration uses left:", list[0].UsesLeft)
	// Output:
	// registration uses left: 10
	// machine tier: stable
	// authenticated: true 3f6c0f0e5d9a4c1b8e2f7a6b5c4d3e2f
	// registration uses left: 9
}

func ExampleParse() {
	_, err := token.Parse("0f8fad5b-d9cb-469f-a165-70867728950e")
	fmt.Println(err)
	_, err = token.Parse("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e")
	fmt.Println(errors.Is(err, token.ErrMalformed), err)
	_, err = token.Parse("0f8fad5b-d9cb-169f-a165-70867728950e")
	fmt.Println(err)
	// Output:
	// <nil>
	// true token: malformed token: length 45, want 36
	// token: malformed token: UUID version 1, want 4
}

func ExampleID() {
	id, _ := token.ID("0f8fad5b-d9cb-469f-a165-70867728950e")
	fmt.Println(id)
	// Output:
	// cdb5166dbf3a9d6842ace2a436c7db1b0df9761a09acc669865771cd8e9dd970
}

// Re-registering a machine revokes its previous machine token.
func ExampleMemoryStore_Register() {
	ctx := context.Background()
	store, err := token.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	reg, _, _ := store.IssueRegistration(ctx, token.Registration{Tier: "stable", Name: "lab", Uses: token.Unlimited})

	first, _, _ := store.Register(ctx, reg, "machine-a")

	// Another machine presenting the same name (a cloned VM, or someone
	// holding the fleet token) cannot take it over...
	_, _, err = store.Register(ctx, reg, "machine-a")
	fmt.Println(errors.Is(err, token.ErrMachineTaken))

	// ...but the holder of the current machine token can rotate it.
	second, _, _ := store.Register(ctx, reg, "machine-a", token.WithCurrentToken(first))
	_, err = store.AuthenticateMachine(ctx, first)
	fmt.Println(errors.Is(err, token.ErrRevoked))
	_, err = store.AuthenticateMachine(ctx, second)
	fmt.Println(err)
	// Output:
	// true
	// true
	// <nil>
}

func ExampleMiddleware_Machine() {
	ctx := context.Background()
	store, err := token.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	reg, _, _ := store.IssueRegistration(ctx, token.Registration{Tier: "stable", Name: "lab", Uses: 1})
	machineToken, _, _ := store.Register(ctx, reg, "machine-a")

	mw, err := token.NewMiddleware(store)
	if err != nil {
		log.Fatal(err)
	}
	patches := mw.Machine(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, _ := token.MachineFromContext(r.Context())
		fmt.Fprintf(w, "patches for tier %s", m.Tier)
	}))

	for _, auth := range []string{"Bearer " + machineToken, "Bearer " + reg} {
		r := httptest.NewRequest("GET", "/v1/patches", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		patches.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200  patches for tier stable
	// 401 Bearer error="invalid_token" {"code":"invalid_token","error":"token not accepted"}
}

// A registration endpoint: the middleware refuses bad registration tokens
// with 401, and the handler exchanges the token for a machine token.
func ExampleMiddleware_Registration() {
	ctx := context.Background()
	store, err := token.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	reg, _, _ := store.IssueRegistration(ctx, token.Registration{Tier: "stable", Name: "lab", Uses: 1})

	mux := http.NewServeMux()
	mw, err := token.NewMiddleware(store)
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("PUT /v1/client/{machine}", mw.Registration(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			regToken, _ := token.BearerToken(r) // checked by the middleware
			machineToken, _, err := store.Register(r.Context(), regToken, r.PathValue("machine"))
			switch {
			case errors.Is(err, token.ErrUnavailable):
				http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			case errors.Is(err, token.ErrInvalid):
				http.Error(w, "bad machine name", http.StatusBadRequest)
			case err != nil: // lost a race for the last use, revoked meanwhile...
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
			default:
				fmt.Fprint(w, machineToken) // the only time anyone sees it
			}
		})))

	for range 2 {
		r := httptest.NewRequest("PUT", "/v1/client/machine-a", nil)
		r.Header.Set("Authorization", "Bearer "+reg)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		_, err := token.Parse(w.Body.String())
		fmt.Println(w.Code, "got a machine token:", err == nil)
	}
	// Output:
	// 200 got a machine token: true
	// 401 got a machine token: false
}

// Options say which constructors take them; a misplaced one is an error,
// never silently ignored.
func ExampleNewMiddleware() {
	store, err := token.NewMemoryStore(token.WithMachineLifetime(90 * 24 * time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	_, err = token.NewMiddleware(store, token.WithMachineLifetime(time.Hour))
	fmt.Println(err)
	fmt.Println(errors.Is(err, token.ErrInvalidOption))
	// Output:
	// token: invalid option: WithMachineLifetime does not apply to NewMiddleware
	// true
}
