package macaroon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

const maxDischargeResponse = 64 << 10

// DischargeClient acquires discharges for the third-party caveats of a
// macaroon, contacting only allow-listed https locations.
type DischargeClient struct {
	allowed map[string]bool
	hc      *http.Client
}

// NewDischargeClient returns a DischargeClient that contacts only the
// third-party locations in allowed (https URLs, compared exactly after
// dropping a trailing "/"). The allow-list is required: a caveat's location
// is not covered by any signature, so without it whoever hands out the
// macaroon picks where the client sends its credentials. Options:
// WithHTTPClient; any other, an empty list or a location that is not a
// plain https URL is ErrInvalidOption.
func NewDischargeClient(allowed []string, opts ...Option) (*DischargeClient, error) {
	allow, err := allowedLocations(allowed)
	if err != nil {
		return nil, err
	}
	cfg, err := core.Build("NewDischargeClient", core.ForDischargeClient, opts)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: core.DefaultClientTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	// A redirect could take the request (and the caveat) to plain http or
	// to a host that is not allow-listed.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &DischargeClient{allowed: allow, hc: hc}, nil
}

// DischargeAll returns m's macaroon followed by discharges for all its
// third-party caveats (and theirs), bound to it and ready for EncodeSlice.
// A location that is not allow-listed fails with ErrLocationNotAllowed
// before any request is made; a refusal by the third party matches
// ErrDenied.
func (c *DischargeClient) DischargeAll(ctx context.Context, m *bakery.Macaroon) (Slice, error) {
	if m == nil || m.M() == nil {
		return nil, fmt.Errorf("%w: nil macaroon", ErrMalformed)
	}
	n := 0
	var cause error // ours, before the bakery's errgo wrapping hides it from errors.Is
	ms, err := bakery.DischargeAll(ctx, m, func(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
		if n++; n >= MaxMacaroonsPerSlice {
			cause = fmt.Errorf("%w: more than %d discharges needed", ErrMalformed, MaxMacaroonsPerSlice-1)
			return nil, cause
		}
		dm, err := c.discharge(ctx, cav, payload)
		if err != nil {
			cause = err
		}
		return dm, err
	})
	if err != nil {
		if cause != nil {
			return nil, cause
		}
		return nil, fmt.Errorf("macaroon: acquiring discharges: %v", err)
	}
	return ms, nil
}

func (c *DischargeClient) discharge(ctx context.Context, cav macaroon.Caveat, payload []byte) (*bakery.Macaroon, error) {
	loc := strings.TrimSuffix(cav.Location, "/")
	if !c.allowed[loc] {
		return nil, fmt.Errorf("%w: %q", ErrLocationNotAllowed, cav.Location)
	}
	form := url.Values{"id64": {base64.RawURLEncoding.EncodeToString(cav.Id)}}
	if len(payload) > 0 {
		form.Set("caveat64", base64.RawURLEncoding.EncodeToString(payload))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loc+"/discharge", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("macaroon: discharge request to %q: %w", loc, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Bakery-Protocol-Version", "3")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("macaroon: discharge request to %q: %w", loc, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDischargeResponse+1))
	if err != nil {
		return nil, fmt.Errorf("macaroon: reading discharge from %q: %w", loc, err)
	}
	if len(body) > maxDischargeResponse {
		return nil, fmt.Errorf("%w: discharge response from %q longer than %d bytes", ErrMalformed, loc, maxDischargeResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(body, &e)
		err := fmt.Errorf("macaroon: discharge from %q: HTTP %d %s: %s", loc, resp.StatusCode, truncate(e.Code, 64), truncate(e.Message, 256))
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w: %v", ErrDenied, err)
		}
		return nil, err
	}
	var dr struct{ Macaroon json.RawMessage }
	if err := json.Unmarshal(body, &dr); err != nil || len(dr.Macaroon) == 0 {
		return nil, fmt.Errorf("%w: bad discharge response from %q", ErrMalformed, loc)
	}
	dm, err := ParseMacaroon(dr.Macaroon)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(dm.M().Id(), cav.Id) {
		return nil, fmt.Errorf("%w: discharge from %q is for another caveat", ErrMalformed, loc)
	}
	return dm, nil
}
