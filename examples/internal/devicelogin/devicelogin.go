// Package devicelogin runs the OAuth 2.0 device authorization grant
// (RFC 8628) at an OpenID provider and returns the ID token it issues: the
// admin tool's "login --sso" and the demo's SSO step share it.
package devicelogin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lpsec/lpsec/tlsconfig"
)

// ErrNoDeviceEndpoint means the provider's discovery document names no
// device authorization endpoint.
var ErrNoDeviceEndpoint = errors.New("the provider offers no device authorization endpoint")

// Prompt is shown the device authorization response (verification URI and
// user code) before polling starts; an error ends the login.
type Prompt func(ctx context.Context, da *oauth2.DeviceAuthResponse) error

// IDToken finds the provider by discovery (go-oidc), reaches it over TLS
// only, trusting the system roots plus caFile if given, starts a device
// authorization for clientID, calls prompt, polls the token endpoint at
// the provider's interval until the user approved (or ctx ends), and
// returns the ID token. secret may be empty for a public client.
func IDToken(ctx context.Context, issuer, clientID, secret, caFile string, prompt Prompt) (string, error) {
	if !strings.HasPrefix(issuer, "https://") {
		return "", errors.New("the issuer must be an https URL")
	}
	srcs := []tlsconfig.PoolSource{tlsconfig.SystemRoots()}
	if caFile != "" {
		srcs = append(srcs, tlsconfig.PEMFile(caFile))
	}
	pool, err := tlsconfig.NewPool(srcs...)
	if err != nil {
		return "", fmt.Errorf("provider CA certificates: %w", err)
	}
	hc, err := tlsconfig.HTTPClient(tlsconfig.WithRootCAs(pool), tlsconfig.WithRequireTLS())
	if err != nil {
		return "", err
	}
	ctx = context.WithValue(gooidc.ClientContext(ctx, hc), oauth2.HTTPClient, hc)
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		return "", fmt.Errorf("provider discovery: %w", err)
	}
	ep := provider.Endpoint()
	if ep.DeviceAuthURL == "" {
		return "", ErrNoDeviceEndpoint
	}
	cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: ep, Scopes: []string{gooidc.ScopeOpenID}}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return "", fmt.Errorf("device authorization: %w", err)
	}
	if err := prompt(ctx, da); err != nil {
		return "", err
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return "", fmt.Errorf("waiting for the approval: %w", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return "", fmt.Errorf("the provider returned no ID token (is the openid scope allowed for %s?)", clientID)
	}
	return idToken, nil
}
