package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/examples/internal/api"
	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/tlsconfig"
)

// contractAuth adds the contract token to requests for the entitlement
// service, and to nothing else.
type contractAuth struct {
	host  string
	token string
	next  http.RoundTripper
}

func (t *contractAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" && r.URL.Host == t.host {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.next.RoundTrip(r)
}

// EnableWithContract registers the machine with a resource macaroon: the
// server mints it with a third-party caveat for the entitlement service,
// which discharges it for holders of a valid contract token. Only
// --contracts-url is contacted for the discharge, only over https.
func (c *Client) EnableWithContract(ctx context.Context, contractToken string) (*State, error) {
	if c.server == nil {
		return nil, errors.New("enable needs --remote-server")
	}
	if c.cfg.ContractsURL == "" {
		return nil, errors.New("--contract needs --contracts-url (the entitlement service the client may contact)")
	}
	cu, err := url.Parse(strings.TrimRight(c.cfg.ContractsURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("--contracts-url: %w", err)
	}
	if err := tlsconfig.RequireTLS(cu); err != nil {
		return nil, fmt.Errorf("--contracts-url: %w", err)
	}
	// 1. Ask without credentials, in the bakery protocol: the server
	// answers httpbakery's discharge-required error with the macaroon.
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.server.JoinPath("/v1/client/"+c.machine).String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(lpmac.BakeryProtocolHeader, "3")
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// 2. Discharge at the allow-listed entitlement service only; any
	// other third-party location in the answer is refused unvisited.
	hc := *c.api
	hc.Transport = &contractAuth{host: cu.Host, token: contractToken, next: c.api.Transport}
	dc, err := lpmac.NewDischargeClient([]string{cu.String()}, lpmac.WithHTTPClient(&hc))
	if err != nil {
		return nil, err
	}
	slice, _, err := dc.DischargeRequired(ctx, resp)
	if errors.Is(err, lpmac.ErrNotDischargeRequired) {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, fmt.Errorf("server does not offer entitlement registration: %w", decodeError(resp.StatusCode, data))
	}
	if err != nil {
		return nil, fmt.Errorf("entitlement registration: %w", err)
	}
	enc, err := lpmac.EncodeSlice(macaroon.Slice(slice))
	if err != nil {
		return nil, err
	}
	// 3. Register with the bound macaroons.
	hdr, err := c.registerHeaders(http.Header{"Authorization": {"Macaroon " + enc}}, "contracts:"+cu.String())
	if err != nil {
		return nil, err
	}
	var rr api.RegisterResponse
	if err := c.register(ctx, hdr, &rr); err != nil {
		return nil, err
	}
	return c.enabled(rr)
}
