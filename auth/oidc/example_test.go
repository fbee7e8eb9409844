package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/lpsec/lpsec/auth/oidc"
	"github.com/lpsec/lpsec/internal/oidcop"
)

// A server verifying the ID tokens of an OpenID provider (here zitadel's
// example provider, running in-process) for admin logins.
func ExampleVerifier_Verify() {
	t := &testing.T{}
	idp := oidcop.Start(t)
	defer idp.Server.Close()
	idToken := idp.IDToken(t, oidcop.WebClientID, oidcop.AdminSubject, "")

	ctx := context.Background()
	v, err := oidc.NewVerifier(ctx, idp.Issuer, oidcop.WebClientID,
		oidc.WithHTTPClient(idp.Client()), // in production: tlsconfig.HTTPClient
		oidc.WithAdminClaim("groups", "lpsec-admins"),
		oidc.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := v.Verify(ctx, idToken)
	fmt.Println(err == nil, id.User == idp.Issuer+"#"+oidcop.AdminSubject)

	_, err = v.Verify(ctx, idToken+"x")
	fmt.Println(errors.Is(err, oidc.ErrSignature) || errors.Is(err, oidc.ErrMalformed))
	// Output:
	// true true
	// true
}
