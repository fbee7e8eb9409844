package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/tokenpg"
)

// tokenCacheSize bounds --token-cache-ttl's cache: about 10 MB of records.
const tokenCacheSize = 20000

func (s *Server) openTokens(ctx context.Context) (token.Store, error) {
	if s.db == nil {
		return token.NewMemoryStore(token.WithLogger(s.log))
	}
	opts := []token.Option{token.WithLogger(s.log), token.WithStoreTimeout(s.opts.DatabaseTimeout)}
	if s.opts.TokenCacheTTL > 0 {
		opts = append(opts, token.WithAuthCache(s.opts.TokenCacheTTL, tokenCacheSize))
	}
	st, err := tokenpg.NewStore(s.db, opts...)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("token store: migrate: %w", err)
	}
	return st, nil
}

func (s *Server) tokenMiddleware() *token.Middleware {
	return s.tmw
}

// machineOnly authenticates the machine token (token.Middleware) and
// checks it belongs to the machine named in the path.
func (s *Server) machineOnly(next http.HandlerFunc) http.HandlerFunc {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := token.MachineFromContext(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "machine token required")
			return
		}
		if machine := r.PathValue("machine"); rec.Machine != machine {
			s.log.Warn("machine token used for another machine", "event", "machine_mismatch", "machine", machine)
			writeError(w, http.StatusForbidden, "forbidden", "this machine token belongs to another machine")
			return
		}
		next(w, r)
	})
	return s.tokenMiddleware().Machine(inner).ServeHTTP
}

func (s *Server) syncOnly(next http.HandlerFunc) http.HandlerFunc {
	return s.tokenMiddleware().Sync(next).ServeHTTP
}

// entitledIssuer is the token.External issuer of machines admitted on a
// resource macaroon the entitlement service discharged.
const entitledIssuer = "entitlement-service"

// entitledCredential names the credential verifyEntitled checked: the
// discharged caveat for this machine. It is recorded, never a secret.
func entitledCredential(machine string) token.External {
	return token.External{Issuer: entitledIssuer, Ref: EntitlementCondition(machine), Tier: Tier}
}

// registerOptions reads the optional proof of possession and retry key of
// a registration. Malformed values are refused with 400 before any store
// work, so they change nothing.
func registerOptions(w http.ResponseWriter, r *http.Request) ([]token.RegisterOption, bool) {
	var opts []token.RegisterOption
	for _, h := range []struct {
		name string
		opt  func(string) token.RegisterOption
	}{{api.HeaderCurrentToken, token.WithCurrentToken}, {api.HeaderIdempotencyKey, token.WithRetryKey}} {
		vs := r.Header.Values(h.name)
		switch {
		case len(vs) == 0:
			continue
		case len(vs) > 1:
			writeError(w, http.StatusBadRequest, "bad_request", "more than one "+h.name+" header")
			return nil, false
		}
		if _, err := token.Parse(vs[0]); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", h.name+" must be a version 4 UUID in 8-4-4-4-12 form")
			return nil, false
		}
		opts = append(opts, h.opt(vs[0]))
	}
	return opts, true
}

// registerRefused answers a refused registration. A taken name gets 409
// with what happened and how to fix it, for the operator reading the
// client's output.
func (s *Server) registerRefused(w http.ResponseWriter, machine string, err error) {
	s.log.Info("registration refused", "event", "machine_register_failed", "reason", tokenReason(err), "machine", machine)
	switch {
	case errors.Is(err, token.ErrMachineTaken):
		writeError(w, http.StatusConflict, "machine_taken",
			"machine ID "+machine+" is already registered with a live machine token, and this request did not present it. "+
				"If this machine was registered before, re-enable it with its saved state (the client sends its current machine token). "+
				"If another machine reports the same machine ID (a cloned VM or disk image), give the clone a new machine ID. "+
				"If this machine lost its state, an admin releases the name: POST /v1/admin/machines/release {\"machine\": \""+machine+"\"}, then enable again.")
	case errors.Is(err, token.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "token store unavailable")
	case errors.Is(err, token.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	default:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "registration token not accepted")
	}
}

// releaseMachine revokes a machine name's live machine token so that it
// can register again.
func (s *Server) releaseMachine(w http.ResponseWriter, r *http.Request) {
	var req api.ReleaseRequest
	if !decodeJSON(w, r, maxJSONBody, &req) {
		return
	}
	if !validMachine(req.Machine) {
		writeError(w, http.StatusBadRequest, "bad_machine", "machine must be 32 lowercase hex characters (an app-specific machine ID)")
		return
	}
	switch err := s.tokens.ReleaseMachine(r.Context(), req.Machine); {
	case errors.Is(err, token.ErrUnknown):
		writeError(w, http.StatusNotFound, "not_found", "this machine ID has no live machine token")
	case err != nil:
		tokenStatus(w, err)
	default:
		s.log.Info("machine released", "event", "machine_released", "machine", req.Machine)
		w.WriteHeader(http.StatusNoContent)
	}
}

// defaultMachinePage is the page size of GET /v1/admin/machines without
// ?limit=.
const defaultMachinePage = 100

// listMachines answers one page of machine records: ?limit= (1..1000) and
// ?after= (the previous page's next).
func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "after" && k != "limit" {
			writeError(w, http.StatusBadRequest, "bad_request", "unknown query parameter; use after and limit")
			return
		}
	}
	limit := defaultMachinePage
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > token.MaxListLimit || len(q["limit"]) > 1 {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit must be one number 1..%d", token.MaxListLimit))
			return
		}
		limit = n
	}
	if len(q["after"]) > 1 {
		writeError(w, http.StatusBadRequest, "bad_request", "one after parameter at most")
		return
	}
	recs, next, err := s.tokens.ListMachines(r.Context(), q.Get("after"), limit)
	if errors.Is(err, token.ErrMalformed) {
		writeError(w, http.StatusBadRequest, "bad_request", "after must be the next value of a previous page")
		return
	}
	if err != nil {
		tokenStatus(w, err)
		return
	}
	out := api.TokenList{Tokens: make([]api.TokenInfo, 0, len(recs)), Next: next}
	for _, rec := range recs {
		out.Tokens = append(out.Tokens, machineInfo(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// pruneInterval is how often the server deletes machine records revoked
// longer ago than the store's retention.
const pruneInterval = time.Hour

func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.tokens.PruneMachines(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("pruning machine records failed", "event", "machine_prune_failed", "error", err.Error())
			}
		}
	}
}

// startFollowing runs, on PostgreSQL, the stores' Follow loops: the admin
// listings of registration and sync tokens and the revocation snapshot are
// then answered from memory and invalidated by database notifications (see
// tokenpg and macaroonpg), until ctx ends.
func (s *Server) startFollowing(ctx context.Context) {
	var loops []func(context.Context) error
	if f, ok := s.tokens.(interface{ Follow(context.Context) error }); ok {
		loops = append(loops, f.Follow)
	}
	if s.mac.follow != nil {
		loops = append(loops, s.mac.follow)
	}
	for _, follow := range loops {
		go func() {
			if err := follow(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("following database notifications stopped", "event", "follow_failed", "error", err.Error())
			}
		}()
	}
}

// internalTokenPrefix names the unlimited registration tokens that earlier
// versions of this server issued themselves at start-up for entitled
// machines (and left behind when killed). Machines now register with
// token.Store.RegisterExternal; the leftovers are revoked at start so that
// nobody holding one could use it. Machines registered with them keep
// their tokens.
const internalTokenPrefix = "entitlement-service registrations (internal, "

func (s *Server) revokeInternalTokens(ctx context.Context) error {
	regs, err := s.tokens.ListRegistrations(ctx)
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	for _, r := range regs {
		if r.Revoked || r.Uses != token.Unlimited || !strings.HasPrefix(r.Name, internalTokenPrefix) {
			continue
		}
		if err := s.tokens.RevokeRegistration(ctx, r.ID); err != nil {
			return fmt.Errorf("token store: revoking a leftover internal registration token: %w", err)
		}
		s.log.Info("leftover internal registration token revoked", "event", "internal_token_revoked", "id_prefix", r.ID[:8])
	}
	return nil
}
