// Package logx makes the JSON logger every example binary uses. It is a
// package of its own so that the client and contracts binaries do not link
// the example server (and with it the PostgreSQL driver) for a logger.
package logx

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
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
