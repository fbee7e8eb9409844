package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/token"
)

func newTestClient(t *testing.T, server string) *Client {
	t.Helper()
	dir := t.TempDir()
	id := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(id, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{RemoteServer: server, StateDir: filepath.Join(dir, "state"), MachineIDFile: id})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The key of an unanswered registration is reused only for the same
// server, machine and credential inside the retry window; the file holds
// the credential's digest, never the credential.
func TestPendingKey(t *testing.T) {
	c := newTestClient(t, "https://a.example")
	k1, err := c.pendingKey("bearer:secret-registration-token")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.pendingFile())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret-registration-token") {
		t.Fatalf("pending.json holds the credential: %s", data)
	}
	if fi, _ := os.Stat(c.pendingFile()); fi.Mode().Perm() != 0o600 {
		t.Errorf("pending.json mode %v, want 0600", fi.Mode().Perm())
	}
	if k, _ := c.pendingKey("bearer:secret-registration-token"); k != k1 {
		t.Errorf("same registration: key %q, want the saved %q", k, k1)
	}
	k2, _ := c.pendingKey("bearer:another-token")
	if k2 == k1 {
		t.Error("another credential reused the key")
	}
	other := newTestClient(t, "https://b.example")
	other.cfg.StateDir = c.cfg.StateDir
	if k, _ := other.pendingKey("bearer:another-token"); k == k2 {
		t.Error("another server reused the key")
	}
	// Older than the server's retry window: useless, replaced.
	k3, _ := c.pendingKey("bearer:x")
	var p pending
	data, _ = os.ReadFile(c.pendingFile())
	_ = json.Unmarshal(data, &p)
	p.Created = time.Now().Add(-token.DefaultRetryWindow - time.Minute)
	data, _ = json.Marshal(p)
	if err := os.WriteFile(c.pendingFile(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, _ := c.pendingKey("bearer:x"); k == k3 {
		t.Error("a key older than the retry window was reused")
	}
}

// A lost answer keeps the key for the next enable; a refusal drops it.
func TestRegisterPendingLifetime(t *testing.T) {
	var status int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	c.api = srv.Client()
	saved := registerBackoff
	registerBackoff = []time.Duration{0, 0}
	defer func() { registerBackoff = saved }()
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		kept   bool
	}{{http.StatusServiceUnavailable, true}, {http.StatusConflict, false}, {http.StatusUnauthorized, false}} {
		status = tc.status
		hdr, err := c.registerHeaders(http.Header{}, "bearer:t")
		if err != nil {
			t.Fatal(err)
		}
		_ = c.register(ctx, hdr, nil)
		_, err = os.Stat(c.pendingFile())
		if kept := err == nil; kept != tc.kept {
			t.Errorf("after %d: pending kept %v, want %v", tc.status, kept, tc.kept)
		}
	}
}
