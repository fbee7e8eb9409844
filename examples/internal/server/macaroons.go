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
	entitledMW   *lpmac.Middleware  // with --contracts-url
	rootKeys     lpmac.RootKeyStore // for start-up and /readyz checks
	kekID        string             // public id of --root-key-kek, "" in memory
	ttl          time.Duration
	contractsURL string
	identityURL  string // "": no identity service (identity.go)
	log          *slog.Logger
	// follow keeps the PostgreSQL revocation snapshot fresh by
	// notifications (macaroonpg.RevocationStore.Follow); nil in memory.
	follow func(context.Context) error
}

// maxRevocationCacheTTL bounds --revocation-cache-ttl like token.MaxAuthCacheTTL
// bounds --token-cache-ttl: how long a login macaroon logged out or revoked
// through another instance may still be accepted here.
const maxRevocationCacheTTL = time.Minute

func newMacaroons(ctx context.Context, o Options, db *sql.DB, checkUser func(context.Context, string) error, log *slog.Logger) (*macaroons, error) {
	if o.AdminTTL <= 0 || o.AdminTTL > lpmac.DefaultMaxTTL {
		return nil, cli.Usagef("--admin-macaroon-ttl must be in (0, %v]", lpmac.DefaultMaxTTL)
	}
	key, err := bakerykey.LoadOrCreate(filepath.Join(o.StateDir, "macaroon-key.json"))
	if err != nil {
		return nil, fmt.Errorf("macaroon key pair in --state-dir: %w", err)
	}
	var (
		store   lpmac.RootKeyStore
		revoked lpmac.RevocationStore
		kekID   string
		follow  func(context.Context) error
	)
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
		ps, err := macaroonpg.NewRootKeyStore(db, kek, lpmac.WithLogger(log), lpmac.WithCacheTTL(2*time.Second),
			lpmac.WithStoreTimeout(o.DatabaseTimeout))
		if err != nil {
			return nil, err
		}
		if err := ps.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("macaroon root keys: migrate: %w", err)
		}
		store = ps
		kekID = kek.ID()
		// By default one indexed query per admin request makes a logout
		// or revocation on one instance refused at once on all of them.
		// --revocation-cache-ttl trades that for a snapshot: while Follow
		// runs (started with the server) and notifications flow, one that
		// a revocation committed anywhere invalidates (refused everywhere
		// within the notification's delivery); otherwise one reloaded at
		// most once per ttl. This instance refuses at once either way.
		cache := lpmac.WithoutRevocationCache()
		if o.RevocationCacheTTL > 0 {
			cache = lpmac.WithCacheTTL(o.RevocationCacheTTL)
		}
		rs, err := macaroonpg.NewRevocationStore(db, lpmac.WithLogger(log), cache,
			lpmac.WithStoreTimeout(o.DatabaseTimeout))
		if err != nil {
			return nil, err
		}
		if err := rs.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("macaroon revocations: migrate: %w", err)
		}
		revoked = rs
		follow = rs.Follow
	} else {
		ms, err := lpmac.NewMemoryRootKeyStore(lpmac.WithLogger(log))
		if err != nil {
			return nil, err
		}
		store = ms
		if revoked, err = lpmac.NewMemoryRevocationStore(lpmac.WithLogger(log)); err != nil {
			return nil, err
		}
	}
	opts := []lpmac.Option{lpmac.WithMaxTTL(lpmac.DefaultMaxTTL), lpmac.WithLogger(log),
		lpmac.WithRevocations(revoked), lpmac.WithCheckUser(checkUser)}
	m := &macaroons{ttl: o.AdminTTL, log: log, rootKeys: store, kekID: kekID, follow: follow}
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
	if opts, err = m.withIdentity(o, opts); err != nil {
		return nil, err
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
	return &api.LoginResponse{User: user, Expires: time.Now().Add(m.ttl).UTC().Truncate(time.Second), Macaroon: mac, Header: "Macaroon " + enc,
		SessionID: lpmac.RevocationID(mac)}, nil
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

// logout ends the macaroon the request was verified with (the middleware
// put its grant in the context), on every instance sharing the database.
func (m *macaroons) logout(w http.ResponseWriter, r *http.Request) {
	g, _ := lpmac.GrantFromContext(r.Context())
	if err := m.svc.Logout(r.Context(), g); err != nil {
		m.revokeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxRevokeBody bounds POST /v1/admin/revocations: the largest valid body
// is a 256-byte user name and a timestamp.
const maxRevokeBody = 1 << 10

// revokeSessions serves POST /v1/admin/revocations.
func (m *macaroons) revokeSessions(w http.ResponseWriter, r *http.Request) {
	var req api.RevokeSessionsRequest
	if !decodeJSON(w, r, maxRevokeBody, &req) {
		return
	}
	var before time.Time
	if req.Before != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Before)
		if err != nil || t.Before(time.Unix(0, 0)) {
			writeError(w, http.StatusBadRequest, "invalid", "before must be an RFC 3339 time after 1970")
			return
		}
		before = t
	}
	n := 0
	for _, set := range []bool{req.ID != "", req.User != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		writeError(w, http.StatusBadRequest, "invalid", "give exactly one of id, user and all")
		return
	}
	var (
		err   error
		resp  api.RevokeSessionsResponse
		scope = "all"
	)
	switch {
	case req.ID != "":
		scope = "id"
		if req.Before != "" {
			writeError(w, http.StatusBadRequest, "invalid", "before goes with user or all, not id")
			return
		}
		err = m.svc.RevokeID(r.Context(), req.ID)
	case req.User != "":
		scope = "user"
		err = m.svc.RevokeUser(r.Context(), req.User, before)
	default:
		err = m.svc.RevokeAll(r.Context(), before)
	}
	if err != nil {
		m.revokeError(w, err)
		return
	}
	resp.Scope = scope
	if scope != "id" {
		if before.IsZero() {
			before = time.Now().UTC()
		}
		resp.Before = &before
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *macaroons) revokeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, lpmac.ErrInvalidRevocation):
		// The message names the field, never a macaroon.
		writeError(w, http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), "macaroon: "))
	case errors.Is(err, lpmac.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot record the revocation now")
	default:
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
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
