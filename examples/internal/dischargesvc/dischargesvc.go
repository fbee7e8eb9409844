// Package dischargesvc serves a third-party discharger over HTTPS: the
// frame the example entitlement service (contracts) and identity service
// share, so that their TLS, limits and shutdown cannot drift apart.
package dischargesvc

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/tlsconfig"
)

// Listen is where and with which certificate a service serves. Without
// TLSCert and TLSKey a CA and a loopback certificate are made (or reused)
// under StateDir/tls.
type Listen struct {
	Addr, StateDir, TLSCert, TLSKey string
}

// Server is a running service.
type Server struct {
	URL       string
	CAFile    string // the generated CA, or "" with a given certificate
	PublicKey string // base64, for the live-patch server to pin
	http      *http.Server
	done      chan struct{}
}

// Start serves discharger at / (and GET /healthz) over TLS until Close.
// Bodies are limited to 64 KiB and headers to 32 KiB.
func Start(l Listen, discharger http.Handler, publicKey string, log *slog.Logger) (*Server, error) {
	cert, keyPEM, caFile := l.TLSCert, l.TLSKey, ""
	if (cert == "") != (keyPEM == "") {
		return nil, cli.Usagef("--tls-cert and --tls-key go together")
	}
	if cert == "" {
		f, err := pki.EnsureServerTLS(filepath.Join(l.StateDir, "tls"), []string{"localhost", "127.0.0.1", "::1"})
		if err != nil {
			return nil, err
		}
		cert, keyPEM, caFile = f.Cert, f.Key, f.CACert
	}
	tcfg, err := tlsconfig.Server(tlsconfig.WithCertificateFiles(cert, keyPEM), tlsconfig.WithLogger(log))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", discharger)
	s := &Server{
		URL:       "https://" + ln.Addr().String(),
		CAFile:    caFile,
		PublicKey: publicKey,
		done:      make(chan struct{}),
		http: &http.Server{Handler: http.MaxBytesHandler(mux, 64<<10), TLSConfig: tcfg, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(tls.NewListener(ln, tcfg))
	}()
	return s, nil
}

// Done is closed when the service stops serving.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the service.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	<-s.done
	return err
}
