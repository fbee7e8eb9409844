// Command server is the example live-patch server: admins log in with HTTP
// Basic (or an OpenID Connect ID token) for a macaroon, machines register with a registration token or an
// entitlement-service discharge, list and download verified patches and
// send reports; downstream servers sync with a sync token. Every security
// decision is made by an lpsec package.
//
//	go run ./examples/server --signing-cert signing-cert.pem \
//	    --admin-users 'alice:$2y$10$...' --report-key k1:$(openssl rand -hex 32)
//
// Without --tls-cert/--tls-key it creates a CA and a server certificate in
// --state-dir and prints the CA's path. Without --database-url patches
// persist in --state-dir/patches (crash-safe: after a kill at any point the
// server lists exactly what it serves) while tokens, macaroon root keys and
// reports are kept in memory and lost on restart; with it, they all live
// in PostgreSQL and several instances can share the database.
//
// Flags have LPSEC_SERVER_* equivalents: --listen is LPSEC_SERVER_LISTEN,
// and so on; secrets can also be read from files (--root-key-kek-file).
//
// Signals: SIGTERM or SIGINT stop accepting connections and let requests
// in flight finish for --shutdown-timeout (exit 0 when they all did);
// SIGHUP reloads the admin users file and the signing certificates.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/logx"
	"github.com/lpsec/lpsec/examples/internal/server"
)

func main() { cli.Main("server", run) }

func run(ctx context.Context, args []string) error {
	var o server.Options
	fs := cli.NewFlagSet("server", "[flags]", `The lpsec example live-patch server (HTTPS only).

Routes: POST /v1/admin/login (Basic, or "Bearer ID-TOKEN" from --oidc-issuer) returns an
admin macaroon; /v1/admin/auth-tokens,
/v1/admin/sync-tokens, /v1/admin/machines, /v1/admin/patches, /v1/admin/sync and
/v1/admin/reports take it ("Authorization: Macaroon ..."). PUT /v1/client/{machine}
registers a machine; GET /v1/client/{machine}/patches?kernel=..., POST
/v1/client/{machine}/report take its machine token; GET /v1/patches/{filename} serves
tarballs; GET /v1/sync/patches takes a sync token. POST /v1/admin/logout ends the
presented macaroon, POST /v1/admin/revocations ends a user's or everyone's.
GET /healthz is liveness, GET /readyz readiness (database, root keys under this KEK,
signing certificates; 503 names what fails).
Security events are JSON log records on stderr with an "event" attribute; with
--metrics-listen they are also counted as Prometheus metrics.
Signals: SIGTERM/SIGINT drain for --shutdown-timeout, then exit (0 if the drain completed);
SIGHUP re-reads --admin-users-file (removed users' macaroons end) and --signing-cert.`)
	o.RegisterFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	log, err := logx.NewLogger(os.Stderr, o.LogLevel)
	if err != nil {
		return cli.Usagef("--log-level: %v", err)
	}
	if err := cli.Positive("shutdown-timeout", o.ShutdownTimeout); err != nil {
		return err
	}
	if err := killHook(&o); err != nil {
		return err
	}
	if err := cli.Positive("log-repeat-interval", o.LogRepeatInterval); err != nil {
		return err
	}
	if err := cli.Positive("database-timeout", o.DatabaseTimeout); err != nil {
		return err
	}
	log, flushLog := logx.Quiet(log, o.LogRepeatInterval)
	defer flushLog(context.Background())
	// SIGHUP is caught from before start-up: its default action would end
	// the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	s, err := server.Start(ctx, o, log)
	if err != nil {
		return err
	}
	// "listening on" comes last: scripts and tests that wait for it then
	// have every start-up line, without guessing how long to wait for more.
	if s.CAFile != "" {
		fmt.Printf("lpsec server: TLS certificate made by the CA in %s (clients: --ca-certs %s)\n", s.CAFile, s.CAFile)
	}
	if s.MetricsAddr != "" {
		fmt.Printf("lpsec server: metrics on http://%s/metrics\n", s.MetricsAddr)
	}
	fmt.Printf("lpsec server: listening on %s (address %s, store: %s)\n", s.URL, s.Addr, storeName(o))
	for {
		select {
		case <-hup:
			_ = s.Reload(ctx) // logged; the old settings stay on an error
			continue
		case <-ctx.Done():
		case <-s.Done():
		}
		break
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	return s.Close(sctx)
}

func storeName(o server.Options) string {
	if o.DatabaseURL != "" {
		return "postgresql"
	}
	return "memory, patches in --state-dir"
}
