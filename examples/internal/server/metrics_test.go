package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

type counted struct{ event, reason string }

// TestEventHandler: every record with an event at info or above is
// counted, whatever level the wrapped handler keeps, with attributes from
// With; free-text reasons do not become label values.
func TestEventHandler(t *testing.T) {
	var got []counted
	var out bytes.Buffer
	h := NewEventHandler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelError}),
		func(e, r string) { got = append(got, counted{e, r}) })
	log := slog.New(h)
	log.Info("x", "event", "token_authn_failed", "reason", "revoked")
	log.Debug("x", "event", "debug_only")
	log.Info("no event here", "reason", "x")
	log.With("event", "from_with").Warn("x", "reason", "patchverify: bad module signature: does not verify")
	log.WithGroup("g").Info("x", "event", "grouped")
	log.Error("x", "event", "Bad Label", "reason", strings.Repeat("a", 60))
	want := []counted{{"token_authn_failed", "revoked"}, {"from_with", "other"}, {"other", "other"}}
	if len(got) != len(want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("count %d = %v, want %v", i, got[i], want[i])
		}
	}
	// The wrapped handler still filters by its own level.
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.Contains(out.String(), "Bad Label") {
		t.Errorf("wrapped handler wrote %d records: %s", n, out.String())
	}
	if !h.Enabled(context.Background(), slog.LevelInfo) || h.Enabled(context.Background(), slog.LevelDebug) {
		t.Errorf("enabled for info (to count) and not for debug")
	}
}

// TestSyncOrigins: what an upstream listing can point a sync at.
func TestSyncOrigins(t *testing.T) {
	allowed, err := parseOrigins(Options{UpstreamURL: "https://Up.example.net:443/base", SyncAllowOrigins: []string{"https://cdn.example.net:8443"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://up.example.net/v1/patches/a.tar", true},
		{"https://UP.example.net:443/x", true},
		{"https://cdn.example.net:8443/a.tar", true},
		{"https://cdn.example.net/a.tar", false},
		{"https://up.example.net:8443/a.tar", false},
		{"https://up.example.net.evil.org/a.tar", false},
		{"https://evil.org/up.example.net/a.tar", false},
		{"https://up.example.net@evil.org/a.tar", false},
		{"https://127.0.0.1/a.tar", false},
		{"http://up.example.net/a.tar", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		ok := u.Scheme == "https" && u.User == nil && allowed[origin(u)]
		if ok != tc.ok {
			t.Errorf("%s: allowed %v, want %v", tc.url, ok, tc.ok)
		}
	}
	for _, bad := range []string{"http://cdn.example.net", "https://cdn.example.net/path", "https://u:p@cdn.example.net", "cdn.example.net", "https://x?q=1"} {
		if _, err := parseOrigins(Options{UpstreamURL: "https://up.example.net", SyncAllowOrigins: []string{bad}}); err == nil {
			t.Errorf("--sync-allow-origin %q accepted", bad)
		}
	}
	if _, err := parseOrigins(Options{UpstreamURL: "https://user@up.example.net"}); err == nil {
		t.Errorf("an upstream URL with user info accepted")
	}
}

// FuzzSyncOrigin: a URL is only ever allowed when its host is the
// upstream's (no parser confusion lets another host through).
func FuzzSyncOrigin(f *testing.F) {
	for _, s := range []string{"https://up.example.net/a", "https://up.example.net@evil/a", "https://evil/up.example.net", "https://up.example.net:443/a", "https://[::1]/a", "https://up.example.net%2f@evil/"} {
		f.Add(s)
	}
	allowed, err := parseOrigins(Options{UpstreamURL: "https://up.example.net"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.User != nil {
			return
		}
		if allowed[origin(u)] && (strings.ToLower(u.Hostname()) != "up.example.net" || (u.Port() != "" && u.Port() != "443")) {
			t.Fatalf("%q allowed: host %q port %q", raw, u.Hostname(), u.Port())
		}
	})
}
