package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/macaroonpg"
)

// Readiness is the body of GET /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Checks maps each check (database, patch_store, root_keys,
	// signing_certs) to "ok" or what is wrong with it.
	Checks map[string]string `json:"checks"`
	// Failed names the failing checks, in a fixed order.
	Failed []string `json:"failed,omitempty"`
}

// healthz is liveness only: the process serves HTTP. Whether it can do
// useful work is /readyz's question; a liveness probe that failed with
// the database would have an orchestrator restart every instance at once.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz checks what serving needs: the database (or the patch
// directory), macaroon root keys usable with this KEK, and the pinned
// signing certificates. It answers 503 naming each failing check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := s.Ready(ctx)
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, res)
}

// Ready runs the readiness checks.
func (s *Server) Ready(ctx context.Context) Readiness {
	res := Readiness{Ready: true, Checks: map[string]string{}}
	check := func(name string, err error, why string) {
		if err == nil {
			res.Checks[name] = "ok"
			return
		}
		res.Ready = false
		res.Failed = append(res.Failed, name)
		res.Checks[name] = why
	}
	if s.db != nil {
		check("database", s.db.PingContext(ctx), "PostgreSQL does not answer")
	}
	check("patch_store", s.cat.Ping(ctx), "patch store unavailable")
	_, _, err := s.mac.rootKeys.RootKey(ctx)
	check("root_keys", err, rootKeyProblem(err))
	var noCerts error
	if s.verifier.Load() == nil {
		noCerts = errors.New("none")
	}
	check("signing_certs", noCerts, "no signing certificates loaded")
	return res
}

func rootKeyProblem(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, macaroonpg.ErrKeyEncryptionKeyMismatch):
		return "the stored root keys do not open with --root-key-kek (wrong key-encryption key)"
	case errors.Is(err, lpmac.ErrUnavailable):
		return "root key store unavailable"
	default:
		return "cannot get a root key"
	}
}

// checkRootKeys is the start-up form of the root_keys check: a server
// whose KEK cannot open the keys other instances made must not start and
// answer every login with 503.
func (s *Server) checkRootKeys(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, _, err := s.mac.rootKeys.RootKey(cctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, macaroonpg.ErrKeyEncryptionKeyMismatch):
		return fmt.Errorf("--root-key-kek: the macaroon root keys in the database were encrypted under a different "+
			"key-encryption key than this one (id %s): give every instance the same --root-key-kek", s.mac.kekID)
	default:
		return fmt.Errorf("macaroon root keys: %w", err)
	}
}
