package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/identity"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// startIdentity starts the example identity service (single sign-on
// stand-in) knowing the admin's bearer secret.
func (d *demo) startIdentity(ctx context.Context) (string, error) {
	d.identitySecret = "sso-" + randHex(16)
	d.secrets = append(d.secrets, d.identitySecret)
	s, err := identity.Start(ctx, identity.Options{Listen: "127.0.0.1:0", StateDir: d.path("identity"),
		TLSCert: d.certFile, TLSKey: d.keyFile, Users: adminUser + "=" + d.identitySecret}, d.log.With("party", "identity"))
	if err != nil {
		return "", err
	}
	d.identity = s
	d.closers = append(d.closers, func() { _ = s.Close(context.Background()) })
	return s.URL + " key " + s.PublicKey[:12] + "...", nil
}

type bearer struct {
	secret string
	next   http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.secret)
	return b.next.RoundTrip(r)
}

// identityLogin asks the server for an identity login macaroon, has the
// identity service discharge it with secret, and returns the
// Authorization header value for the discharged slice.
func (d *demo) identityLogin(ctx context.Context, admin *client.Admin, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, admin.URL("/v1/admin/login/identity"), nil)
	if err != nil {
		return "", err
	}
	resp, err := admin.HTTP().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var lr struct {
		api.IdentityLoginResponse
		Macaroon json.RawMessage `json:"macaroon"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&lr); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /v1/admin/login/identity: HTTP %d", resp.StatusCode)
	}
	m, err := lpmac.ParseMacaroon(lr.Macaroon)
	if err != nil {
		return "", err
	}
	hc := *admin.HTTP()
	hc.Transport = bearer{secret: secret, next: hc.Transport}
	dc, err := lpmac.NewDischargeClient([]string{d.identity.URL}, lpmac.WithHTTPClient(&hc))
	if err != nil {
		return "", err
	}
	ms, err := dc.DischargeAll(ctx, m)
	if err != nil {
		return "", err
	}
	enc, err := lpmac.EncodeSlice(ms)
	if err != nil {
		return "", err
	}
	d.secrets = append(d.secrets, enc)
	return "Macaroon " + enc, nil
}

// identitySteps: the admin logs in through the identity service and uses
// the result on an admin API; a wrong secret is refused by the identity
// service.
func (d *demo) identitySteps(ctx context.Context, admin *client.Admin) {
	d.st.refused("admin logs in through the identity service with a wrong secret", func() error {
		_, err := d.identityLogin(ctx, admin, "sso-wrong-"+randHex(8))
		return err
	}, lpmac.ErrDenied, nil)
	d.st.ok("admin logs in through the identity service (single sign-on)", func() (string, error) {
		authz, err := d.identityLogin(ctx, admin, d.identitySecret)
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin.URL("/v1/admin/auth-tokens"), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", authz)
		resp, err := admin.HTTP().Do(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("listing tokens with the SSO macaroon: HTTP %d", resp.StatusCode)
		}
		return "discharged by " + d.identity.URL + ", accepted for " + adminUser, nil
	})
}
