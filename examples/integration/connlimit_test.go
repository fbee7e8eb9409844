package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/testenv"
)

// limitedServer runs the server binary with an open-file limit of 256
// (prlimit, util-linux) and extra flags.
func limitedServer(t *testing.T, extra ...string) (*daemon, *tls.Config) {
	t.Helper()
	f := getFixtures(t)
	prlimit := testenv.LookPath(t, "prlimit", "util-linux")
	args := append([]string{"--nofile=256", "--", exe(t, "server")}, serverArgs(f, filepath.Join(t.TempDir(), "s"))...)
	srv := startCmd(t, []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}, "server", exec.Command(prlimit, append(args, extra...)...))
	caPEM, err := os.ReadFile(srv.line(t, `CA in (\S+) \(`))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return srv, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func dialFrom(ctx context.Context, srv *daemon, from string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", strings.TrimPrefix(srv.URL, "https://"))
}

// idleConn opens a TLS connection from address from, gets path on it and
// keeps it open (an idle keep-alive connection), or fails.
func idleConn(ctx context.Context, srv *daemon, cfg *tls.Config, from, path string) (net.Conn, int, error) {
	raw, err := dialFrom(ctx, srv, from)
	if err != nil {
		return nil, 0, err
	}
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		c.Close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return c, resp.StatusCode, nil
}

// alive reports whether the server still holds c open: a closed
// connection reads EOF at once, a live idle one times out.
func alive(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// served times one GET /healthz on a new connection from address from.
func served(t *testing.T, ctx context.Context, srv *daemon, cfg *tls.Config, from string) time.Duration {
	t.Helper()
	start := time.Now()
	c, code, err := idleConn(ctx, srv, cfg, from, "/healthz")
	took := time.Since(start)
	if err != nil || code != http.StatusOK {
		t.Fatalf("new client from %s: %d %v after %v", from, code, err, took)
	}
	c.Close()
	return took
}

func holdIdle(t *testing.T, ctx context.Context, srv *daemon, cfg *tls.Config, n int) (held []net.Conn, refused int) {
	t.Helper()
	for range n {
		c, code, err := idleConn(ctx, srv, cfg, "127.0.0.2", "/healthz")
		if err != nil {
			refused++
			continue
		}
		if code != http.StatusOK {
			t.Fatalf("/healthz: %d", code)
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return held, refused
}

// TestConnectionLimits is issue 19's acceptance over the wire: with the
// server's open-file limit at 256 and 127.0.0.2 opening 300 idle
// keep-alive connections to /healthz (the 240, and more), a new client from
// 127.0.0.3 is served within 1 s. Without the limits (--max-conns and
// --max-conns-per-addr 100000) the server held 246 of them, ran out of
// file descriptors and the new client's connection was never accepted.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Defaults: --max-conns 192 (3/4 of 256), --max-conns-per-addr 48.
	t.Run("per_address_default", func(t *testing.T) {
		srv, cfg := limitedServer(t)
		srv.waitStderr(t, `"max_conns":192,"max_conns_per_addr":48`)
		held, refused := holdIdle(t, ctx, srv, cfg, 300)
		if len(held) != 48 || refused != 252 {
			t.Errorf("127.0.0.2 holds %d connections (%d refused), want 48 (252)", len(held), refused)
		}
		took := served(t, ctx, srv, cfg, "127.0.0.3")
		if took > time.Second {
			t.Errorf("new client served after %v, want within 1 s", took)
		}
		t.Logf("per-address limit: %d held, %d refused; 127.0.0.3 served in %v", len(held), refused, took)
	})

	// Without a per-address limit in the way, the total limit closes idle
	// connections first: all 300 get through one after another, the server
	// never holds more than 192, and the new client is served.
	t.Run("idle_closed_first", func(t *testing.T) {
		srv, cfg := limitedServer(t, "--max-conns-per-addr", "1000")
		held, refused := holdIdle(t, ctx, srv, cfg, 300)
		if refused != 0 {
			t.Errorf("%d of 300 connections refused although idle ones could be closed", refused)
		}
		took := served(t, ctx, srv, cfg, "127.0.0.3")
		if took > time.Second {
			t.Errorf("new client served after %v, want within 1 s", took)
		}
		live := 0
		for _, c := range held {
			if alive(c) {
				live++
			}
		}
		// 192 slots: the new client's connection took one (it has closed
		// by now, but its slot may be released after our reads).
		if live > 192 || live < 180 {
			t.Errorf("the server holds %d of 127.0.0.2's connections, want at most 192 and close to it", live)
		}
		t.Logf("idle eviction: %d of 300 still held; 127.0.0.3 served in %v", live, took)
	})

	// A probe address gets through even when no connection is idle, but
	// only for /healthz and /readyz; anyone else is refused.
	t.Run("probe_address", func(t *testing.T) {
		srv, cfg := limitedServer(t, "--max-conns", "20", "--max-conns-per-addr", "1000", "--probe-addr", "127.0.0.4/32")
		// 20 connections that never finish a TLS handshake: not idle, so
		// not closed for newcomers (for up to the 10 s handshake timeout).
		for range 20 {
			c, err := dialFrom(ctx, srv, "127.0.0.2")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		if c, _, err := idleConn(ctx, srv, cfg, "127.0.0.3", "/healthz"); err == nil {
			c.Close()
			t.Fatal("a 21st connection from 127.0.0.3 was served beyond --max-conns 20")
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			c, code, err := idleConn(ctx, srv, cfg, "127.0.0.4", path)
			if err != nil || code != http.StatusOK {
				t.Fatalf("probe %s: %d %v", path, code, err)
			}
			c.Close()
		}
		c, code, err := idleConn(ctx, srv, cfg, "127.0.0.4", "/v1/patches/x.tar")
		if err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("probe address on another route: %d %v, want 503", code, err)
		}
		c.Close()
	})
}
