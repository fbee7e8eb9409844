package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"golang.org/x/oauth2"

	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/devicelogin"
	"github.com/lpsec/lpsec/internal/oidcop"
)

// ssoSteps logs an admin in by single sign-on, as "admin login --sso"
// does: the device authorization grant at the provider (approved on the
// provider's device page, as the user would in a browser), then the ID
// token for a macaroon at POST /v1/admin/login. Two users log in at once
// (the provider makes each poll wait its 5 s interval): the admin, and a
// user outside the admin group, whose ID token the server must refuse, as
// it must the same token edited to claim the group.
func (d *demo) ssoSteps(ctx context.Context) bool {
	st := d.st
	type result struct {
		idToken string
		err     error
	}
	deviceLogin := func(subject string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			tok, err := devicelogin.IDToken(ctx, d.idp.Issuer, oidcop.DeviceClientID, oidcop.DeviceSecret, d.idpCA,
				func(ctx context.Context, da *oauth2.DeviceAuthResponse) error {
					return d.idp.ApproveDeviceCode(ctx, da.UserCode, subject)
				})
			ch <- result{tok, err}
		}()
		return ch
	}
	adminCh, otherCh := deviceLogin(oidcop.AdminSubject), deviceLogin(oidcop.OtherSubject)
	var other result

	ok := st.ok("admin logs in by SSO: device flow at the provider, ID token for a macaroon", func() (string, error) {
		r := <-adminCh
		other = <-otherCh
		for _, t := range []string{r.idToken, other.idToken} {
			if t != "" {
				d.secrets = append(d.secrets, t)
			}
		}
		if r.err != nil {
			return "", fmt.Errorf("device login: %w", r.err)
		}
		a, err := client.NewAdmin(d.a.URL, d.caFile)
		if err != nil {
			return "", err
		}
		lr, err := a.LoginBearer(ctx, r.idToken)
		if err != nil {
			return "", err
		}
		d.secrets = append(d.secrets, strings.TrimPrefix(lr.Header, "Macaroon "))
		if want := d.idp.Issuer + "#" + oidcop.AdminSubject; lr.User != want {
			return "", fmt.Errorf("logged in as %q, want %q", lr.User, want)
		}
		list, err := a.ListTokens(ctx, "auth-tokens")
		if err != nil {
			return "", fmt.Errorf("list tokens with the SSO macaroon: %w", err)
		}
		return fmt.Sprintf("as %s; its macaroon lists tokens (%d)", lr.User, len(list)), nil
	})
	if !ok {
		return false
	}
	st.refused("an ID token of a user outside "+oidcop.AdminGroup+" is refused", func() error {
		if other.err != nil {
			return fmt.Errorf("device login: %w", other.err)
		}
		return d.bearerRefused(ctx, other.idToken, "not_admin")
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "unauthorized") })
	st.refused("that ID token edited to claim "+oidcop.AdminGroup+" is refused (signature)", func() error {
		if other.err != nil {
			return fmt.Errorf("device login: %w", other.err)
		}
		forged, err := withGroups(other.idToken, []string{"staff", oidcop.AdminGroup})
		if err != nil {
			return err
		}
		return d.bearerRefused(ctx, forged, "signature")
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "unauthorized") })
	return true
}

// bearerRefused tries an SSO login with idToken and checks that the
// server's event log gained one sso_refused event for reason.
func (d *demo) bearerRefused(ctx context.Context, idToken, reason string) error {
	before, err := d.countEvents(`"event":"sso_refused"`, `"reason":"`+reason+`"`)
	if err != nil {
		return err
	}
	a, err := client.NewAdmin(d.a.URL, d.caFile)
	if err != nil {
		return err
	}
	_, lerr := a.LoginBearer(ctx, idToken)
	after, err := d.countEvents(`"event":"sso_refused"`, `"reason":"`+reason+`"`)
	if err != nil {
		return err
	}
	if lerr == nil {
		return nil
	}
	if after != before+1 {
		return fmt.Errorf("refused (%v), but not for reason %q", lerr, reason)
	}
	return fmt.Errorf("%w; event sso_refused, reason %s", lerr, reason)
}

// countEvents counts the event log's lines holding every one of subs.
func (d *demo) countEvents(subs ...string) (int, error) {
	events, err := os.ReadFile(d.logFile)
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range bytes.Lines(events) {
		all := true
		for _, s := range subs {
			all = all && bytes.Contains(line, []byte(s))
		}
		if all {
			n++
		}
	}
	return n, nil
}

// withGroups rewrites the "groups" claim of a JWT's payload, keeping its
// header and signature: what a holder who wants more rights could do.
func withGroups(jwt string, groups []string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	claims[oidcop.GroupsClaim] = groups
	payload, err = json.Marshal(claims)
	if err != nil {
		return "", err
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, "."), nil
}
