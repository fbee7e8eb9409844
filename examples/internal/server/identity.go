package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/cli"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Admin login through an identity service (issue 18 item 2): the server
// mints a login macaroon with a third-party caveat addressed to the pinned
// identity service; the admin gets it discharged there, and the discharge
// declares who the admin is. The declared user goes through the same
// admin-list check, revocation and TTL cap as a Basic login.

// withIdentity pins --identity-url with its key.
func (m *macaroons) withIdentity(o Options, opts []lpmac.Option) ([]lpmac.Option, error) {
	if o.IdentityURL == "" {
		return opts, nil
	}
	u, err := url.Parse(o.IdentityURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, cli.Usagef("--identity-url must be an https URL")
	}
	pub, err := lpmac.ParsePublicKey(strings.TrimSpace(o.IdentityPublicKey))
	if err != nil {
		return nil, cli.Usagef("--identity-public-key: %v", err)
	}
	m.identityURL = strings.TrimRight(o.IdentityURL, "/")
	return append(opts, lpmac.WithIdentityProvider(m.identityURL, pub), lpmac.WithCheckIdentity(checkIdentity)), nil
}

// checkIdentity keeps the identity service to the names of the admin list:
// "ISSUER#SUBJECT" names belong to OpenID Connect logins (sso.go), which
// the admin-user check accepts on the issuer's word alone, so an identity
// service declaring one would make anyone an admin.
func checkIdentity(_ context.Context, _ string, id lpmac.Identity) error {
	if strings.Contains(id.User, "#") {
		return errors.New("user names with # are reserved for OpenID Connect logins")
	}
	return nil
}

// identityLogin answers POST /v1/admin/login/identity without
// authentication: the macaroon grants nothing until the identity service
// has discharged it for an admin.
func (s *Server) identityLogin(w http.ResponseWriter, r *http.Request) {
	if s.mac.identityURL == "" {
		writeError(w, http.StatusNotFound, "not_found", "no identity service configured (--identity-url)")
		return
	}
	resp, err := s.mac.identityLogin(r.Context())
	if err != nil {
		s.log.Error("minting identity login macaroon", "event", "admin_login_failed", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot mint a macaroon now")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *macaroons) identityLogin(ctx context.Context) (*api.IdentityLoginResponse, error) {
	mac, err := m.svc.MintIdentityLogin(ctx, m.identityURL, m.ttl, adminOps()...)
	if err != nil {
		return nil, err
	}
	// The bakery JSON form: the binary form would drop the caveat's
	// encrypted payload, which the identity service needs.
	return &api.IdentityLoginResponse{Macaroon: mac, IdentityURL: m.identityURL,
		Expires: time.Now().Add(m.ttl).UTC().Truncate(time.Second)}, nil
}
