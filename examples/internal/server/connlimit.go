package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Connection limits (--max-conns, --max-conns-per-addr, --probe-addr).
// Every accepted TCP connection holds a file descriptor until it closes,
// and idle keep-alive connections cost a client nothing to hold: without
// a limit, 240 idle connections to /healthz kept every new client of a
// server with 256 open files out for as long as they were held.
const (
	// maxConnsCap bounds the automatic --max-conns.
	maxConnsCap = 10000
	// probeConnsMax bounds the connections a --probe-addr may open beyond
	// the limits (they serve only /healthz and /readyz).
	probeConnsMax = 8
)

// autoMaxConns is --max-conns's default: three quarters of the open-file
// limit (the rest is for files, the database and the metrics listener),
// at most maxConnsCap.
func autoMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	n := rl.Cur / 4 * 3
	if n > maxConnsCap {
		return maxConnsCap
	}
	return max(int(n), 16)
}

// connLimiter wraps the TCP listener: a connection beyond the per-address
// limit is closed at once; at the total limit the idle keep-alive
// connection of the address holding the most connections (the oldest
// among equals) is closed to make room, and only when none is idle is the
// new connection closed. Connections from a probe address refused by the
// limits are admitted (up to probeConnsMax) for /healthz and /readyz only.
type connLimiter struct {
	net.Listener
	max, perAddr int
	probes       []netip.Prefix
	log          *slog.Logger

	mu      sync.Mutex
	total   int
	byAddr  map[netip.Addr]int
	idle    map[*limitedConn]time.Time // idle since
	probing int
}

func newConnLimiter(ln net.Listener, maxConns, perAddr int, probes []netip.Prefix, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: maxConns, perAddr: perAddr, probes: probes, log: log,
		byAddr: map[netip.Addr]int{}, idle: map[*limitedConn]time.Time{}}
}

// limitedConn is an admitted connection; its release happens once, on
// Close or on eviction, under the limiter's lock.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	key       netip.Addr
	probeOnly bool
	released  bool
}

// addrKey is the address a limit applies to: the IPv4 address, or the
// /64 of an IPv6 address (one host usually holds a whole /64).
func addrKey(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func (l *connLimiter) isProbe(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	for _, p := range l.probes {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, key: addrKey(c.RemoteAddr())}
		var victim *limitedConn
		reason := ""
		l.mu.Lock()
		switch {
		case l.byAddr[lc.key] >= l.perAddr:
			reason = "per-address limit"
		case l.total >= l.max:
			if victim = l.evictLocked(); victim == nil {
				reason = "limit reached, no idle connection to close"
			}
		}
		if reason != "" && l.probing < probeConnsMax && l.isProbe(c.RemoteAddr()) {
			lc.probeOnly = true
			l.probing++
			reason = ""
		} else if reason == "" {
			l.total++
			l.byAddr[lc.key]++
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Conn.Close()
		}
		if reason != "" {
			// Debug: a flood of refused connections must not flood the log.
			l.log.Debug("connection refused", "event", "conn_refused", "remote", lc.key.String(), "reason", reason)
			_ = c.Close()
			continue
		}
		return lc, nil
	}
}

// evictLocked releases the idle connection to close for a new one, or
// returns nil when none is idle.
func (l *connLimiter) evictLocked() *limitedConn {
	var victim *limitedConn
	var since time.Time
	for c, t := range l.idle {
		if victim == nil || l.byAddr[c.key] > l.byAddr[victim.key] ||
			l.byAddr[c.key] == l.byAddr[victim.key] && t.Before(since) {
			victim, since = c, t
		}
	}
	if victim != nil {
		victim.releaseLocked()
	}
	return victim
}

func (c *limitedConn) releaseLocked() {
	if c.released {
		return
	}
	c.released = true
	l := c.l
	delete(l.idle, c)
	if c.probeOnly {
		l.probing--
		return
	}
	l.total--
	if l.byAddr[c.key]--; l.byAddr[c.key] <= 0 {
		delete(l.byAddr, c.key)
	}
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.releaseLocked()
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// unwrap finds the limitedConn under the conn http.Server sees (a
// *tls.Conn over it).
func unwrap(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// connState is http.Server.ConnState: it tracks which connections are
// idle, the ones closed first.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	lc := unwrap(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle && !lc.released && !lc.probeOnly {
		l.idle[lc] = time.Now()
	} else {
		delete(l.idle, lc)
	}
}

type probeOnlyKey struct{}

// connContext is http.Server.ConnContext: it marks requests on a probe
// connection admitted beyond the limits.
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := unwrap(c); lc != nil && lc.probeOnly {
		return context.WithValue(ctx, probeOnlyKey{}, true)
	}
	return ctx
}

// probeOnly serves only /healthz and /readyz on a probe connection
// admitted beyond the limits: the allowance keeps probes working, it is
// no way around the limits for anything else.
func probeOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(probeOnlyKey{}) != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "connection_limit", "connection limit reached; this connection serves only /healthz and /readyz")
			return
		}
		next.ServeHTTP(w, r)
	})
}
