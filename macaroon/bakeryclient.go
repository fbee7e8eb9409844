package macaroon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// DischargeRequired answers an httpbakery discharge-required response as a
// stock bakery client would, within DischargeClient's rules: it parses resp
// with ParseDischargeRequired, checks every third-party location of the
// macaroon against the allow-list before any request is made (a hostile
// location fails with ErrLocationNotAllowed and is never contacted), then
// acquires the discharges (DischargeAll). The result is ready for
// EncodeSlice, to resend the request with "Authorization: Macaroon …" or a
// Macaroons header; dr tells where httpbakery clients would keep it as a
// cookie. Send the first request with "Bakery-Protocol-Version: 3"
// (BakeryProtocolHeader): answers in an older version's form are refused.
func (c *DischargeClient) DischargeRequired(ctx context.Context, resp *http.Response) (ms Slice, dr *DischargeRequired, err error) {
	dr, err = ParseDischargeRequired(resp)
	if err != nil {
		return nil, nil, err
	}
	for _, cav := range dr.Macaroon.M().Caveats() {
		if len(cav.VerificationId) == 0 {
			continue
		}
		if !c.allowed[strings.TrimSuffix(cav.Location, "/")] {
			return nil, nil, fmt.Errorf("%w: %q", ErrLocationNotAllowed, truncate(cav.Location, 256))
		}
	}
	ms, err = c.DischargeAll(ctx, dr.Macaroon)
	if err != nil {
		return nil, nil, err
	}
	return ms, dr, nil
}
