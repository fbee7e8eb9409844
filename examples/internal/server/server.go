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
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// MetricsAddr is the metrics listener's address, with --metrics-listen.
	MetricsAddr string

	ln       net.Listener
	limiter  *connLimiter
	http     *http.Server
	db       *sql.DB
	cat      Catalogue
	incoming string // --state-dir/incoming: uploads and synced patches being verified
	verifier atomic.Pointer[patchverify.Verifier]
	// verifySem admits one patch verification at a time.
	verifySem chan struct{}
	tokens    token.Store
	tmw       *token.Middleware
	reports   reportStore
	admin     *adminAuth
	mac       *macaroons
	ident     *identity
	upstream  *http.Client
	// syncOrigins are the origins a sync may fetch from: the upstream's
	// and --sync-allow-origin's.
	syncOrigins map[string]bool

	metrics  *metrics
	inFlight atomic.Int64 // requests being served
	served   atomic.Int64 // requests completed

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
	if o.DatabaseTimeout == 0 { // Options made in code, not by RegisterFlags
		o.DatabaseTimeout = 2 * time.Second
	}
	s := &Server{opts: o, log: log, done: make(chan struct{}), verifySem: make(chan struct{}, 1)}
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
	if o.DatabaseTimeout < 0 {
		return nil, cli.Usagef("--database-timeout must be positive")
	}
	if o.TokenCacheTTL < 0 || o.TokenCacheTTL > token.MaxAuthCacheTTL {
		return nil, cli.Usagef("--token-cache-ttl %v: want 0 (off) up to %v", o.TokenCacheTTL, token.MaxAuthCacheTTL)
	}
	if o.TokenCacheTTL > 0 && o.DatabaseURL == "" {
		return nil, cli.Usagef("--token-cache-ttl needs --database-url (the memory store has no round trip to save)")
	}
	if o.RevocationCacheTTL < 0 || o.RevocationCacheTTL > maxRevocationCacheTTL {
		return nil, cli.Usagef("--revocation-cache-ttl %v: want 0 (off) up to %v", o.RevocationCacheTTL, maxRevocationCacheTTL)
	}
	if o.RevocationCacheTTL > 0 && o.DatabaseURL == "" {
		return nil, cli.Usagef("--revocation-cache-ttl needs --database-url (the memory store has no round trip to save)")
	}
	if o.MaxPatchSize <= 0 {
		return nil, cli.Usagef("--max-patch-size must be positive")
	}
	if o.SyncMaxPatches < 0 || o.SyncMaxBytes < 0 {
		return nil, cli.Usagef("--sync-max-patches and --sync-max-bytes must be positive")
	}
	if o.SyncMaxPatches == 0 {
		o.SyncMaxPatches = DefaultSyncMaxPatches
	}
	if o.SyncMaxBytes == 0 {
		o.SyncMaxBytes = DefaultSyncMaxBytes
	}
	s.opts = o
	if err := checkListen(o); err != nil {
		return nil, err
	}
	if o.StateDir == "" {
		return nil, cli.Usagef("--state-dir must not be empty")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	// Leftovers of uploads cut short by a crash are never verified
	// patches: start from an empty directory.
	s.incoming = filepath.Join(o.StateDir, "incoming")
	if err := os.RemoveAll(s.incoming); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	if err := os.MkdirAll(s.incoming, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	if s.metrics, err = newMetrics(); err != nil {
		return nil, err
	}
	log = slog.New(s.metrics.slogHandler(log.Handler()))
	s.log = log

	// Patch signature trust: only the pinned certificates.
	v, err := loadVerifier(o.SigningCerts)
	if err != nil {
		return nil, err
	}
	s.verifier.Store(v)

	// Storage.
	if o.DatabaseURL != "" {
		if s.db, err = sql.Open("pgx", o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("--database-url: %w", err)
		}
		// A bounded pool: a request flood queues here instead of opening
		// connections until PostgreSQL's max_connections refuses everyone;
		// the wait counts against --database-timeout, so it ends in a 503.
		// Connections are renewed, so one on a failed-over server or a
		// stale route does not live on.
		s.db.SetMaxOpenConns(16)
		s.db.SetMaxIdleConns(16)
		s.db.SetConnMaxIdleTime(5 * time.Minute)
		s.db.SetConnMaxLifetime(30 * time.Minute)
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = s.db.PingContext(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("--database-url: cannot reach PostgreSQL: %w", err)
		}
		var pc *pgCatalogue
		if pc, err = newPGCatalogue(ctx, s.db); err != nil {
			return nil, err
		}
		pc.timeout, s.cat = o.DatabaseTimeout, pc
		var pr *pgReports
		if pr, err = newPGReports(ctx, s.db); err != nil {
			return nil, err
		}
		pr.timeout, s.reports = o.DatabaseTimeout, pr
	} else {
		fc, err := openFileCatalogue(filepath.Join(o.StateDir, "patches"), log)
		if err != nil {
			return nil, err
		}
		fc.step = o.PutStepHook
		s.cat = fc
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
	if s.admin.sso, err = newSSO(ctx, o, log); err != nil {
		return nil, err
	}
	if s.admin.sso != nil {
		s.admin.users.sso = s.admin.sso.isUser
	}
	if s.ident, err = newIdentity(o, log); err != nil {
		return nil, err
	}

	// TLS and the listener; the URL is known only after binding (port 0).
	serverTLS, err := s.serverTLS()
	if err != nil {
		return nil, err
	}
	maxConns, perAddr, probes, err := connLimits(o)
	if err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	s.limiter = newConnLimiter(s.ln, maxConns, perAddr, probes, log)
	s.ln = s.limiter
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
	// A KEK that cannot open the root keys already in the database would
	// start a server whose every login fails: refuse now, saying why.
	if err := s.checkRootKeys(ctx); err != nil {
		s.ln.Close()
		return nil, err
	}
	if err := s.revokeInternalTokens(ctx); err != nil {
		s.ln.Close()
		return nil, err
	}
	if o.UpstreamURL != "" {
		if s.upstream, err = s.newUpstreamClient(o, log); err != nil {
			s.ln.Close()
			return nil, err
		}
	}

	if o.MetricsListen != "" {
		if s.MetricsAddr, err = s.metrics.listen(o.MetricsListen, log); err != nil {
			s.ln.Close()
			return nil, err
		}
	}
	s.http = &http.Server{
		Handler:           probeOnly(s.Handler()),
		ConnState:         s.limiter.connState,
		ConnContext:       s.limiter.connContext,
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
	go s.pruneLoop(runCtx)
	s.startFollowing(runCtx)
	log.Info("server started", "event", "server_started", "url", s.URL, "store", s.storeName(),
		"max_conns", s.limiter.max, "max_conns_per_addr", s.limiter.perAddr)
	return s, nil
}

// connLimits resolves --max-conns, --max-conns-per-addr and --probe-addr.
func connLimits(o Options) (maxConns, perAddr int, probes []netip.Prefix, err error) {
	if o.MaxConns < 0 || o.MaxConnsPerAddr < 0 {
		return 0, 0, nil, cli.Usagef("--max-conns and --max-conns-per-addr must not be negative")
	}
	maxConns, perAddr = o.MaxConns, o.MaxConnsPerAddr
	if maxConns == 0 {
		maxConns = autoMaxConns()
	}
	if perAddr == 0 {
		perAddr = max(1, maxConns/4)
	}
	for _, a := range o.ProbeAddrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return 0, 0, nil, cli.Usagef("--probe-addr %q: want an IP address or a CIDR", a)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		probes = append(probes, p.Masked())
	}
	return maxConns, perAddr, probes, nil
}

func (s *Server) storeName() string {
	if s.db != nil {
		return "postgresql"
	}
	return "memory, patches in --state-dir"
}

func (s *Server) serverTLS() (*tls.Config, error) {
	cert, key := s.opts.TLSCert, s.opts.TLSKey
	if cert == "" {
		host, _, err := net.SplitHostPort(s.opts.Listen)
		if err != nil {
			return nil, cli.Usagef("--listen: %v", err)
		}
		hosts := append([]string{}, s.opts.TLSHostnames...)
		hosts = append(hosts, "localhost", "127.0.0.1", "::1")
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
		if err := coverHosts(f, hosts, s.log); err != nil {
			return nil, err
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

// Close stops accepting connections, lets requests in flight finish until
// ctx ends (--shutdown-timeout), then closes storage. It logs the start
// and the end of the drain with counts; it returns an error when requests
// were still in flight at the deadline.
func (s *Server) Close(ctx context.Context) error {
	start := time.Now()
	served := s.served.Load()
	s.log.Info("shutting down: no new connections, draining requests in flight", "event", "server_shutdown_started",
		"in_flight", s.inFlight.Load())
	s.stop()
	err := s.http.Shutdown(ctx)
	var left int64
	completed := s.served.Load() - served
	if err != nil {
		// The deadline passed: count, then cut what is left.
		left = s.inFlight.Load()
		_ = s.http.Close()
	}
	<-s.done
	if s.metrics != nil {
		s.metrics.close()
	}
	s.closeStorage()
	if err != nil {
		s.log.Error("shutdown: drain deadline passed, requests cut", "event", "server_shutdown_done",
			"completed", completed, "cut", left, "duration", time.Since(start).String())
		return fmt.Errorf("shutdown: %d requests still in flight after the drain timeout: %w", left, err)
	}
	s.log.Info("shutdown complete", "event", "server_shutdown_done",
		"completed", completed, "cut", 0, "duration", time.Since(start).String())
	return s.serveErr
}

// Reload re-reads what SIGHUP reloads: the admin users file (removed
// users are refused at once, their macaroons included) and the signing
// certificates (the TLS certificate files are re-read by tlsconfig when
// they change). On an error the current settings stay.
func (s *Server) Reload(ctx context.Context) error {
	v, err := loadVerifier(s.opts.SigningCerts)
	if err != nil {
		s.log.Error("reload refused", "event", "server_reload_failed", "error", err.Error())
		return err
	}
	if err := s.ReloadAdminUsers(ctx); err != nil {
		s.log.Error("reload refused", "event", "server_reload_failed", "error", err.Error())
		return err
	}
	s.verifier.Store(v)
	s.log.Info("reloaded admin users and signing certificates", "event", "server_reloaded")
	return nil
}

func loadVerifier(files []string) (*patchverify.Verifier, error) {
	var pinned []*x509.Certificate
	for _, f := range files {
		certs, err := pki.ReadCerts(f)
		if err != nil {
			return nil, fmt.Errorf("--signing-cert: %w", err)
		}
		pinned = append(pinned, certs...)
	}
	v, err := patchverify.NewVerifier(pinned)
	if err != nil {
		return nil, fmt.Errorf("--signing-cert: %w", err)
	}
	return v, nil
}

// checkListen refuses a wildcard --listen without --public-url: patch URLs
// would name an address no client can reach.
func checkListen(o Options) error {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return cli.Usagef("--listen: %v; want HOST:PORT", err)
	}
	if o.PublicURL != "" {
		return nil
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return cli.Usagef("--listen %s is a wildcard address and patch URLs need a name clients can reach: "+
			"pass --public-url https://HOSTNAME:%s (and, with the generated certificate, --tls-hostnames HOSTNAME)", o.Listen, port)
	}
	return nil
}

// coverHosts makes sure the certificate kept in --state-dir/tls names
// every host (--tls-hostnames may have grown since it was made): if not,
// a new one is issued by the same CA, so clients keep their --ca-certs.
func coverHosts(f *pki.ServerFiles, hosts []string, log *slog.Logger) error {
	certs, err := pki.ReadCerts(f.Cert)
	if err != nil || len(certs) == 0 {
		return fmt.Errorf("TLS certificate in --state-dir: %v", err)
	}
	var missing []string
	for _, h := range hosts {
		if certs[0].VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ca, err := pki.ReadCerts(f.CACert)
	if err != nil || len(ca) == 0 {
		return fmt.Errorf("TLS CA in --state-dir: %v", err)
	}
	key, err := pki.ReadKey(f.CAKey)
	if err != nil {
		return fmt.Errorf("TLS CA key in --state-dir: %w", err)
	}
	srv, err := pki.IssueServer(&pki.Pair{Cert: ca[0], Key: key}, hosts, 365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("issuing a TLS certificate for %v: %w", hosts, err)
	}
	if err := srv.Write(f.Cert, f.Key); err != nil {
		return fmt.Errorf("writing the TLS certificate in --state-dir: %w", err)
	}
	log.Info("new TLS certificate for added host names", "event", "tls_cert_issued", "hosts", strings.Join(hosts, ","))
	return nil
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
