package server

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/bakerykey"
	"github.com/lpsec/lpsec/examples/internal/cli"
	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/macaroonpg"
)

// AdminEntity is the bakery entity of every admin operation.
const AdminEntity = "lpsec-admin"

// RegisterOp is what a resource macaroon for machine grants.
func RegisterOp(machine string) bakery.Op {
	return bakery.Op{Entity: "machine/" + machine, Action: "register"}
}

// EntitlementCondition is the third-party condition the entitlement
// service checks: that the requester holds a valid contract.
func EntitlementCondition(machine string) string { return "entitled-machine " + machine }

type macaroons struct {
	svc          *lpmac.Service
	ttl          time.Duration
	contractsURL string
	log          *slog.Logger
}

func newMacaroons(ctx context.Context, o Options, db *sql.DB, log *slog.Logger) (*macaroons, error) {
	if o.AdminTTL <= 0 || o.AdminTTL > lpmac.DefaultMaxTTL {
		return nil, cli.Usagef("--admin-macaroon-ttl must be in (0, %v]", lpmac.DefaultMaxTTL)
	}
	key, err := bakerykey.LoadOrCreate(filepath.Join(o.StateDir, "macaroon-key.json"))
	if err != nil {
		return nil, fmt.Errorf("macaroon key pair in --state-dir: %w", err)
	}
	var store lpmac.RootKeyStore
	if db != nil {
		if o.RootKeyKEK == "" {
			return nil, cli.Usagef("--root-key-kek is required with --database-url (root keys are encrypted at rest); make one with: openssl rand -base64 32")
		}
		kek, err := macaroonpg.ParseKeyEncryptionKey(o.RootKeyKEK)
		if err != nil {
			return nil, cli.Usagef("--root-key-kek: %v", err)
		}
		// Revocation reaches the other instances within CacheTTL; a few
		// seconds keeps the shared-database story honest without a
		// query per request.
		ps, err := macaroonpg.NewRootKeyStore(db, kek, lpmac.WithLogger(log), lpmac.WithCacheTTL(2*time.Second))
		if err != nil {
			return nil, err
		}
		if err := ps.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("macaroon root keys: migrate: %w", err)
		}
		store = ps
	} else {
		ms, err := lpmac.NewMemoryRootKeyStore(lpmac.WithLogger(log))
		if err != nil {
			return nil, err
		}
		store = ms
	}
	opts := []lpmac.Option{lpmac.WithMaxTTL(lpmac.DefaultMaxTTL), lpmac.WithLogger(log)}
	m := &macaroons{ttl: o.AdminTTL, log: log}
	if o.ContractsURL != "" {
		u, err := url.Parse(o.ContractsURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, cli.Usagef("--contracts-url must be an https URL")
		}
		pub, err := lpmac.ParsePublicKey(strings.TrimSpace(o.ContractsPublicKey))
		if err != nil {
			return nil, cli.Usagef("--contracts-public-key: %v", err)
		}
		m.contractsURL = strings.TrimRight(o.ContractsURL, "/")
		opts = append(opts, lpmac.WithThirdParty(m.contractsURL, pub))
	}
	if m.svc, err = lpmac.NewService("lpsec-example-server", key, store, opts...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *macaroons) close() {}

func adminOps() []bakery.Op {
	ops := make([]bakery.Op, len(api.AdminOps))
	for i, a := range api.AdminOps {
		ops[i] = bakery.Op{Entity: AdminEntity, Action: a}
	}
	return ops
}

func (m *macaroons) login(ctx context.Context, user string) (*api.LoginResponse, error) {
	mac, err := m.svc.MintLogin(ctx, user, m.ttl, adminOps()...)
	if err != nil {
		return nil, err
	}
	// The header carries the binary V2 form, which RequestMacaroons reads
	// several times faster than the JSON form; a login macaroon has only
	// first-party caveats, so nothing is lost (third-party payloads are what
	// the binary form drops).
	bin, err := mac.M().MarshalBinary()
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString(bin)
	return &api.LoginResponse{User: user, Expires: time.Now().Add(m.ttl).UTC().Truncate(time.Second), Macaroon: mac, Header: "Macaroon " + enc}, nil
}

// macaroonStatus maps a verification failure to an HTTP answer; the
// message says which kind of failure, never anything about the macaroon.
func macaroonStatus(err error) (status int, code, msg string) {
	switch {
	case errors.Is(err, lpmac.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", "cannot verify macaroons now"
	case errors.Is(err, lpmac.ErrMissing):
		return http.StatusUnauthorized, "unauthorized", "macaroon required: POST /v1/admin/login first"
	case errors.Is(err, lpmac.ErrMalformed):
		return http.StatusBadRequest, "malformed_macaroon", "malformed macaroon"
	case errors.Is(err, lpmac.ErrExpired):
		return http.StatusUnauthorized, "expired", "macaroon expired"
	case errors.Is(err, lpmac.ErrDischargeRequired):
		return http.StatusUnauthorized, "discharge_required", "macaroon needs a discharge"
	case errors.Is(err, lpmac.ErrUnknownRootKey):
		return http.StatusUnauthorized, "unknown_root_key", "macaroon's root key is unknown or revoked"
	default: // ErrDenied
		return http.StatusForbidden, "denied", "macaroon does not grant this operation"
	}
}

func macaroonError(w http.ResponseWriter, err error) {
	status, code, msg := macaroonStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Macaroon")
	}
	writeError(w, status, code, msg)
}

// require serves next only to requests whose macaroon grants op.
func (m *macaroons) require(op string, next http.HandlerFunc) http.Handler {
	want := bakery.Op{Entity: AdminEntity, Action: op}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, err := m.svc.VerifyRequest(r.Context(), r, want)
		if err != nil {
			macaroonError(w, err)
			return
		}
		if g.User == "" {
			// A resource macaroon has no user; admin actions need one.
			writeError(w, http.StatusForbidden, "denied", "macaroon does not grant this operation")
			return
		}
		m.log.Info("admin operation", "event", "admin_operation", "user", g.User, "op", op)
		next(w, r)
	})
}

func (m *macaroons) hasContracts() bool { return m.contractsURL != "" }

// present reports whether r carries any macaroon (or a malformed one,
// which verification then refuses cleanly).
func (m *macaroons) present(r *http.Request) bool {
	ms, err := lpmac.RequestMacaroons(r)
	return err != nil || len(ms) > 0
}

func (m *macaroons) dischargeRequired(ctx context.Context, machine string) (*api.DischargeRequired, error) {
	mac, err := m.svc.MintResource(ctx, m.contractsURL, EntitlementCondition(machine), 10*time.Minute, RegisterOp(machine))
	if err != nil {
		return nil, err
	}
	return &api.DischargeRequired{
		Code:       "discharge_required",
		Message:    "registration needs a registration token or a resource macaroon discharged by the entitlement service",
		Macaroon:   mac,
		ThirdParty: m.contractsURL,
	}, nil
}

// verifyEntitled checks a discharged resource macaroon for registering
// machine; it returns a zero status when it verifies.
func (m *macaroons) verifyEntitled(r *http.Request, machine string) (int, string, string) {
	g, err := m.svc.VerifyRequest(r.Context(), r, RegisterOp(machine))
	if err != nil {
		return macaroonStatus(err)
	}
	if g.User != "" {
		// An admin login macaroon never registers machines.
		return http.StatusForbidden, "denied", "macaroon does not grant this operation"
	}
	return 0, "", ""
}
