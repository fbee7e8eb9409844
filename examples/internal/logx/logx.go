// Package logx makes the JSON logger every example binary uses. It is a
// package of its own so that the client and contracts binaries do not link
// the example server (and with it the PostgreSQL driver) for a logger.
package logx

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lpsec/lpsec/internal/ratelog"
)

// NewLogger returns the JSON logger the examples use: one record per line,
// security events carry a stable "event" attribute.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "", "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// IndividualEvents are the events that matter one by one (a refused
// credential): Quiet keys them by the request's source.
var IndividualEvents = []string{
	"token_authn_failed", "macaroon_verify_failed", "basicauth_authn_failed", "auth_throttled",
	"machine_register_failed", "machine_mismatch", "report_refused", "discharge_refused",
}

// Quiet wraps l so that an outage does not flood the log: repeated
// warnings and errors (same event, reason and message) are written once per
// interval with a "suppressed" count, refused credentials up to 3 times per
// source and interval (internal/ratelog). Info and debug records pass.
// Flush writes the counts still pending; call it at shutdown.
func Quiet(l *slog.Logger, interval time.Duration) (_ *slog.Logger, flush func(context.Context) error) {
	h := ratelog.New(l.Handler(), ratelog.Options{Interval: interval, Individual: IndividualEvents})
	return slog.New(h), h.Flush
}
