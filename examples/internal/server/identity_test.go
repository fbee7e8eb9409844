package server

import (
	"context"
	"testing"

	lpmac "github.com/lpsec/lpsec/macaroon"
)

// The admin-user check accepts any ISSUER#SUBJECT name on the OpenID
// Connect issuer's word; checkIdentity keeps the identity service from
// declaring one.
func TestIdentityCannotDeclareSSONames(t *testing.T) {
	ctx := context.Background()
	u := &adminUsers{names: map[string]bool{"alice": true}, sso: (&sso{prefix: "https://oidc.example#"}).isUser}
	if err := u.check(ctx, "https://oidc.example#root"); err != nil {
		t.Fatalf("premise: the admin-user check refuses an SSO name: %v", err)
	}
	if err := checkIdentity(ctx, "https://login.example", lpmac.Identity{User: "https://oidc.example#root"}); err == nil {
		t.Fatal("the identity service may declare an OpenID Connect name")
	}
	if err := checkIdentity(ctx, "https://login.example", lpmac.Identity{User: "alice"}); err != nil {
		t.Fatalf("alice refused: %v", err)
	}
}
