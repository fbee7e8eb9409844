package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lpsec/lpsec/auth/oidc"
	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/internal/authheader"
	"github.com/lpsec/lpsec/tlsconfig"
)

// sso is OpenID Connect single sign-on for the admin login route:
// "Authorization: Bearer <ID token>" from the configured provider.
type sso struct {
	v      *oidc.Verifier
	prefix string // issuer + "#": the user names SSO logins declare
	log    *slog.Logger
}

func newSSO(ctx context.Context, o Options, log *slog.Logger) (*sso, error) {
	if o.OIDCIssuer == "" && o.OIDCClientID == "" && o.OIDCAdminClaim == "" {
		return nil, nil
	}
	if o.OIDCIssuer == "" || o.OIDCClientID == "" || o.OIDCAdminClaim == "" {
		return nil, cli.Usagef("--oidc-issuer, --oidc-client-id and --oidc-admin-claim go together")
	}
	claim, value, ok := strings.Cut(o.OIDCAdminClaim, "=")
	if !ok || claim == "" || value == "" {
		return nil, cli.Usagef("--oidc-admin-claim must be CLAIM=VALUE, as groups=lpsec-admins")
	}
	pool, err := TrustPool(o.OIDCCACerts)
	if err != nil {
		return nil, fmt.Errorf("--oidc-ca-certs: %w", err)
	}
	client, err := tlsconfig.HTTPClient(tlsconfig.WithRootCAs(pool), tlsconfig.WithRequireTLS(), tlsconfig.WithLogger(log))
	if err != nil {
		return nil, err
	}
	client.Timeout = 15 * time.Second
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := oidc.NewVerifier(dctx, o.OIDCIssuer, o.OIDCClientID,
		oidc.WithHTTPClient(client), oidc.WithLogger(log), oidc.WithAdminClaim(claim, value))
	if err != nil {
		return nil, fmt.Errorf("--oidc-issuer: %w", err)
	}
	return &sso{v: v, prefix: o.OIDCIssuer + "#", log: log}, nil
}

type ssoUserKey struct{}

// maxBearer bounds the Authorization header of an SSO login (the
// verifier's own bound on the token, plus the scheme).
const maxBearer = oidc.DefaultMaxTokenSize + 64

// bearer answers a Bearer login: the ID token must verify and grant admin
// rights; the user it names goes into the context for the login handler.
// It reports false when the request is not a Bearer login.
func (s *sso) bearer(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	raw, err := authheader.Credentials(r.Header.Values("Authorization"), "Bearer", maxBearer)
	if errors.Is(err, authheader.ErrMissing) || errors.Is(err, authheader.ErrOtherScheme) {
		return false
	}
	if err == nil {
		var id *oidc.Identity
		if id, err = s.v.Verify(r.Context(), raw); err == nil {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ssoUserKey{}, id.User)))
			return true
		}
		// Logged by the verifier (sso_refused with the reason).
	} else {
		reason := "malformed"
		if errors.Is(err, authheader.ErrTooLong) {
			reason = "too_large"
		}
		s.log.Warn("sso login refused", "event", "sso_refused", "reason", reason)
	}
	// The answer does not say why, as for Basic.
	w.Header().Set("WWW-Authenticate", `Bearer realm="lpsec admin", error="invalid_token"`)
	status := http.StatusUnauthorized
	if errors.Is(err, oidc.ErrProviderUnavailable) {
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, "unauthorized", "authentication required")
	return true
}

// isUser reports whether user is a name SSO logins of this provider declare.
func (s *sso) isUser(user string) bool {
	return s != nil && strings.HasPrefix(user, s.prefix) && len(user) > len(s.prefix)
}
