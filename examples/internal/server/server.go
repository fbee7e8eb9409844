// Package server is the example live-patch server behind examples/server
// and the demo: every security decision is made by an lpsec package (auth,
// macaroon, token, report, patchverify, tlsconfig); this package only wires
// them to HTTP routes and storage.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/patchverify"
	"github.com/lpsec/lpsec/tlsconfig"
	"github.com/lpsec/lpsec/token"
)

// Server is a running example server.
type Server struct {
	opts Options
	log  *slog.Logger

	// URL is the https URL clients use (--public-url or the listener's).
	URL string
	// Addr is the listener's address.
	Addr string
	// CAFile is the generated CA certificate, when the server made its own
	// TLS certificate; empty with --tls-cert.
	CAFile string

	ln       net.Listener
	http     *http.Server
	db       *sql.DB
	cat      Catalogue
	verifier *patchverify.Verifier
	tokens   token.Store
	tmw      *token.Middleware
	reports  reportStore
	admin    *adminAuth
	mac      *macaroons
	ident    *identity
	upstream *http.Client

	// entitled is a registration token of this process, never shown to
	// anyone: machines whose resource macaroon the entitlement service
	// discharged are registered with it (token.Store has no other way to
	// make a machine token).
	entitledToken string
	entitledID    string

	syncMu   sync.Mutex
	stop     context.CancelFunc
	done     chan struct{}
	serveErr error
}

// Tier is the one tier this example serves.
const Tier = "stable"

// Start validates o, opens storage, binds the listener and serves until
// Close. Errors caused by the settings are *cli.UsageError or name the
// setting.
func Start(ctx context.Context, o Options, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeStorage()
		}
	}()
	if len(o.SigningCerts) == 0 {
		return nil, cli.Usagef("--signing-cert is required: the certificate that patches must be signed by")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, cli.Usagef("--tls-cert and --tls-key go together")
	}
	if o.AdminUsers != "" && o.AdminUsersFile != "" {
		return nil, cli.Usagef("give --admin-users or --admin-users-file, not both")
	}
	if (o.ContractsURL == "") != (o.ContractsPublicKey == "") {
		return nil, cli.Usagef("--contracts-url and --contracts-public-key go together")
	}
	if (o.IdentityURL == "") != (o.IdentityPublicKey == "") {
		return nil, cli.Usagef("--identity-url and --identity-public-key go together")
	}
	if (o.UpstreamURL == "") != (o.UpstreamSyncToken == "") {
		return nil, cli.Usagef("--upstream-url and --upstream-sync-token go together")
	}
	if o.MaxPatchSize <= 0 {
		return nil, cli.Usagef("--max-patch-size must be positive")
	}
	if o.StateDir == "" {
		return nil, cli.Usagef("--state-dir must not be empty")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}

	// Patch signature trust: only the pinned certificates.
	var pinned []*x509.Certificate
	for _, f := range o.SigningCerts {
		certs, err := pki.ReadCerts(f)
		if err != nil {
			return nil, fmt.Errorf("--signing-cert: %w", err)
		}
		pinned = append(pinned, certs...)
	}
	if s.verifier, err = patchverify.NewVerifier(pinned); err != nil {
		return nil, fmt.Errorf("--signing-cert: %w", err)
	}

	// Storage.
	if o.DatabaseURL != "" {
		if s.db, err = sql.Open("pgx", o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		// A bounded pool: a request flood queues here instead of opening
		// connections until PostgreSQL's max_connections refuses everyone.
		s.db.SetMaxOpenConns(16)
		s.db.SetMaxIdleConns(16)
		s.db.SetConnMaxIdleTime(5 * time.Minute)
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = s.db.PingContext(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("--database-url: cannot reach PostgreSQL: %w", err)
		}
		if s.cat, err = newPGCatalogue(ctx, s.db); err != nil {
			return nil, err
		}
		if s.reports, err = newPGReports(ctx, s.db); err != nil {
			return nil, err
		}
	} else {
		if s.cat, err = newFileCatalogue(filepath.Join(o.StateDir, "patches")); err != nil {
			return nil, err
		}
		s.reports = newMemReports()
	}
	if s.tokens, err = s.openTokens(ctx); err != nil {
		return nil, err
	}
	if s.tmw, err = token.NewMiddleware(s.tokens, token.WithLogger(log)); err != nil {
		return nil, err
	}
	if s.admin, err = newAdminAuth(o, log); err != nil {
		return nil, err
	}
	if s.ident, err = newIdentity(o, log); err != nil {
		return nil, err
	}

	// TLS and the listener; the URL is known only after binding (port 0).
	serverTLS, err := s.serverTLS()
	if err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	s.Addr = s.ln.Addr().String()
	s.URL = strings.TrimRight(o.PublicURL, "/")
	if s.URL == "" {
		s.URL = "https://" + s.Addr
	} else if u, err := url.Parse(s.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		s.ln.Close()
		return nil, cli.Usagef("--public-url must be an https URL, got %q", o.PublicURL)
	}
	if s.mac, err = newMacaroons(ctx, o, s.db, s.admin.users.check, log); err != nil {
		s.ln.Close()
		return nil, err
	}
	s.admin.users.mu.Lock()
	s.admin.users.removed = func(ctx context.Context, user string) {
		// Logged by macaroon (macaroon_revoked); on a failure the user
		// check still refuses them while they stay removed.
		if err := s.mac.svc.RevokeUser(context.WithoutCancel(ctx), user, time.Time{}); err != nil {
			s.log.Error("revoking a removed admin's logins", "event", "admin_revoke_failed", "user", user, "error", err.Error())
		}
	}
	s.admin.users.mu.Unlock()
	if o.ContractsURL != "" {
		if err := s.issueEntitledToken(ctx); err != nil {
			s.ln.Close()
			return nil, err
		}
	}
	if o.UpstreamURL != "" {
		if s.upstream, err = newUpstreamClient(o, log); err != nil {
			s.ln.Close()
			return nil, err
		}
	}

	s.http = &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         serverTLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	go func() {
		defer close(s.done)
		err := s.http.Serve(tls.NewListener(s.ln, serverTLS))
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	if s.upstream != nil {
		go s.syncLoop(runCtx)
	}
	log.Info("server started", "event", "server_started", "url", s.URL, "store", s.storeName())
	return s, nil
}

func (s *Server) storeName() string {
	if s.db != nil {
		return "postgresql"
	}
	return "memory"
}

func (s *Server) serverTLS() (*tls.Config, error) {
	cert, key := s.opts.TLSCert, s.opts.TLSKey
	if cert == "" {
		host, _, err := net.SplitHostPort(s.opts.Listen)
		if err != nil {
			return nil, cli.Usagef("--listen: %v", err)
		}
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if host != "" && host != "localhost" && host != "127.0.0.1" && host != "::1" && host != "0.0.0.0" && host != "::" {
			hosts = append([]string{host}, hosts...)
		}
		if u, err := url.Parse(s.opts.PublicURL); err == nil && u.Hostname() != "" {
			hosts = append([]string{u.Hostname()}, hosts...)
		}
		f, err := pki.EnsureServerTLS(filepath.Join(s.opts.StateDir, "tls"), hosts)
		if err != nil {
			return nil, fmt.Errorf("creating a TLS certificate in --state-dir: %w", err)
		}
		cert, key, s.CAFile = f.Cert, f.Key, f.CACert
	}
	cfg, err := tlsconfig.Server(tlsconfig.WithCertificateFiles(cert, key), tlsconfig.WithLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	s.log.Debug("TLS settings", "event", "tls_config", "settings", tlsconfig.Describe(cfg))
	return cfg, nil
}

// Close stops serving (letting requests in flight finish until ctx ends)
// and closes storage.
func (s *Server) Close(ctx context.Context) error {
	s.stop()
	err := s.http.Shutdown(ctx)
	<-s.done
	if s.entitledID != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.tokens.RevokeRegistration(rctx, s.entitledID)
		cancel()
	}
	s.closeStorage()
	if err == nil {
		err = s.serveErr
	}
	return err
}

// ReloadAdminUsers re-reads --admin-users-file (SIGHUP): removed users are
// refused at their next request, their macaroons included. On an error
// the current users stay.
func (s *Server) ReloadAdminUsers(ctx context.Context) error {
	return s.admin.users.reload(ctx)
}

// Done is closed when the server stops serving.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) closeStorage() {
	if s.mac != nil {
		s.mac.close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

func (s *Server) issueEntitledToken(ctx context.Context) error {
	tok, rec, err := s.tokens.IssueRegistration(ctx, token.Registration{
		Tier: Tier,
		Name: "entitlement-service registrations (internal, " + s.Addr + ")",
		Uses: token.Unlimited,
	})
	if err != nil {
		return fmt.Errorf("issuing the internal registration token for entitled machines: %w", err)
	}
	s.entitledToken, s.entitledID = tok, rec.ID
	return nil
}
