package server

import (
	"context"
	"database/sql"
	"encoding/base64"
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
	entitledMW   *lpmac.Middleware // with --contracts-url
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
	if m.hasContracts() {
		if m.entitledMW, err = lpmac.NewMiddleware(m.svc, lpmac.WithDischargeRequired(m.mintResource, "")); err != nil {
			return nil, err
		}
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

// requireAdmin serves next only to requests whose macaroon grants op and
// names a user; the SDK middleware answers every refusal (lpsec/macaroon's
// status table, the shared JSON error body).
func (m *macaroons) requireAdmin(op string, next http.HandlerFunc) http.Handler {
	return m.svc.Require(bakery.Op{Entity: AdminEntity, Action: op})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, _ := lpmac.GrantFromContext(r.Context())
		if g == nil || g.User == "" {
			// A resource macaroon has no user; admin actions need one.
			writeError(w, http.StatusForbidden, "denied", "macaroon does not grant this operation")
			return
		}
		m.log.Info("admin operation", "event", "admin_operation", "user", g.User, "op", op)
		next(w, r)
	}))
}

func (m *macaroons) hasContracts() bool { return m.contractsURL != "" }

// entitled serves next only to requests carrying a resource macaroon for
// the machine in the path, discharged by the entitlement service. Without
// one, the SDK middleware answers httpbakery's discharge-required error
// with a freshly minted resource macaroon, which stock bakery clients
// discharge and retry with.
func (m *macaroons) entitled(next http.Handler) http.Handler {
	return m.entitledMW.RequireFunc(func(r *http.Request) []bakery.Op {
		return []bakery.Op{RegisterOp(r.PathValue("machine"))}
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g, _ := lpmac.GrantFromContext(r.Context()); g == nil || g.User != "" {
			// An admin login macaroon never registers machines.
			writeError(w, http.StatusForbidden, "denied", "macaroon does not grant this operation")
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// mintResource mints the resource macaroon the entitlement service must
// discharge before ops (registering one machine) are granted.
func (m *macaroons) mintResource(ctx context.Context, r *http.Request, ops []bakery.Op) (*bakery.Macaroon, error) {
	return m.svc.MintResource(ctx, m.contractsURL, EntitlementCondition(r.PathValue("machine")), 10*time.Minute, ops...)
}
