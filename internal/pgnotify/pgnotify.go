// Package pgnotify lets lpsec's PostgreSQL stores keep a copy of a small
// table in memory without serving it stale: a [Follower] holds one
// dedicated connection that LISTENs on a channel the table's triggers
// NOTIFY, and a generation that changes on every notification, on every
// local change and whenever the connection is lost or regained. A
// [Cached] value is answered from memory only while the Follower is live
// and its generation is the one the value was read under; otherwise the
// caller's query runs, exactly as without a cache.
//
// PostgreSQL delivers a notification only after the notifying transaction
// commits, and in commit order on a working connection, so a copy is at
// most one notification's delivery behind the database. Delivery can stop
// without an error: a partition or a frozen server leaves the connection
// open, and a transaction-pooling proxy (PgBouncer's pool_mode =
// transaction) answers queries but drops the LISTEN. After every quiet
// heartbeat the Follower therefore notifies itself and waits for that
// notification to come back. It counts itself live only once its first
// such notification has come back on a connection, and then only for two
// heartbeats after the last notification it received, which bounds how
// stale a copy can be whatever fails.
package pgnotify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultHeartbeat is how long a Follower waits for a notification before
// it notifies itself; copies are trusted for two heartbeats after the last
// notification received.
const DefaultHeartbeat = time.Second

// ApplicationName names a Follower's connection in pg_stat_activity.
const ApplicationName = "lpsec-pgnotify"

// ErrNotPgx: the *sql.DB does not use the pgx driver, whose connection is
// needed to receive notifications.
var ErrNotPgx = errors.New("pgnotify: the *sql.DB does not use the pgx driver (github.com/jackc/pgx/v5/stdlib)")

// Follower follows one notification channel. The zero value is not
// usable; call New. Its methods are safe for concurrent use.
type Follower struct {
	channel   string
	heartbeat time.Duration
	log       *slog.Logger
	base      time.Time // origin of lease, read on the monotonic clock

	gen       atomic.Uint64
	sessionID atomic.Uint64 // moves whenever delivery may have had a gap
	lease     atomic.Int64  // nanoseconds since base until which copies are trusted; 0: not live

	running atomic.Bool

	// route, when set, sees each payload and says whether the copies are
	// affected (OnNotification).
	route func(payload string) bool

	// observe, when set (tests), is told of each state change: "live",
	// "notified:" and the payload, "heartbeat", "lost".
	observe func(event string)

	// afterListen, when set (tests), runs on the connection once it
	// listens.
	afterListen func(*pgx.Conn)
}

// New returns a Follower of channel, a PostgreSQL identifier chosen by the
// store (never input). heartbeat <= 0 means DefaultHeartbeat.
func New(channel string, heartbeat time.Duration, logger *slog.Logger) *Follower {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{channel: channel, heartbeat: heartbeat, log: logger, base: time.Now()}
}

// Observe sets a function told of every state change ("live",
// "notified:" and the payload, "heartbeat", "lost"), for tests that wait on
// them. Call it before Run.
func (f *Follower) Observe(fn func(event string)) { f.observe = fn }

// OnNotification sets a function that sees each notification's payload
// first and returns whether the Cached values are affected (the
// generation moves only if so), for stores that act on a payload
// themselves, such as evicting one cache entry. Call it before Run.
func (f *Follower) OnNotification(fn func(payload string) bool) { f.route = fn }

func (f *Follower) event(e string) {
	if f.observe != nil {
		f.observe(e)
	}
}

func (f *Follower) now() int64 { return int64(time.Since(f.base)) }

// Current returns the generation and whether copies read under it may be
// served now.
func (f *Follower) Current() (gen uint64, live bool) {
	// The lease first: renew moves the counters before it stores a new
	// lease, so a reader that sees a lease granted after a gap also sees
	// the counters moved by that gap, never a pre-gap generation with a
	// post-gap lease.
	l := f.lease.Load()
	gen = f.gen.Load()
	return gen, l != 0 && f.now() < l
}

// Session returns a number that changes whenever the Follower may have
// missed a notification (it lost its connection, or its lease lapsed),
// and whether it is live: for copies invalidated one by one from
// notifications (OnNotification), which are good only within one session.
func (f *Follower) Session() (id uint64, live bool) {
	l := f.lease.Load() // first, as in Current
	id = f.sessionID.Load()
	return id, l != 0 && f.now() < l
}

// Running reports whether Run is running (live or not).
func (f *Follower) Running() bool { return f.running.Load() }

// Changed records a change made by this process, so that its own next read
// sees it without waiting for the notification.
func (f *Follower) Changed() { f.gen.Add(1) }

// renew extends the lease after a sign of life. A lease that had lapsed
// (or none) also moves the generation: whatever was notified meanwhile may
// not have been seen yet.
func (f *Follower) renew() {
	now := f.now()
	if old := f.lease.Load(); old == 0 || now >= old {
		f.sessionID.Add(1)
		f.gen.Add(1)
	}
	f.lease.Store(now + 2*int64(f.heartbeat))
}

func (f *Follower) lost() {
	f.lease.Store(0)
	f.sessionID.Add(1)
	f.gen.Add(1)
}

// Run follows the channel until ctx is done, reconnecting with backoff
// when the connection fails, and returns ctx's error; or ErrNotPgx at once
// if db does not use the pgx driver. It uses one connection of its own,
// opened with the settings of db's connections and outside db's pool. Only
// one Run at a time per Follower.
func (f *Follower) Run(ctx context.Context, db *sql.DB) error {
	if !f.running.CompareAndSwap(false, true) {
		return fmt.Errorf("pgnotify: Follower of %q is already running", f.channel)
	}
	defer func() {
		f.lost()
		f.running.Store(false)
	}()

	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		// The settings are copied again for every connection, so that
		// rotated credentials and the driver's connect hooks apply.
		cfg, err := connConfig(ctx, db, f.heartbeat)
		if errors.Is(err, ErrNotPgx) {
			return err
		}
		live := false
		if err == nil {
			live, err = f.session(ctx, cfg)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if live {
			backoff = minBackoff
		}
		// The channel is in the message too: log de-duplication (the
		// example server's ratelog) keys on the message, and two
		// channels failing are two facts.
		f.log.LogAttrs(ctx, slog.LevelWarn, "database notifications on "+f.channel+" lost; reading from the database until they are back",
			slog.String("event", "pgnotify_lost"), slog.String("channel", f.channel),
			slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// connConfig borrows one of db's connections to copy its settings.
func connConfig(ctx context.Context, db *sql.DB, timeout time.Duration) (*pgx.ConnConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	err = c.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return fmt.Errorf("%w (driver connection is %T)", ErrNotPgx, dc)
		}
		cfg = pc.Conn().Config().Copy()
		// The copy still points at the pool connection's notification
		// buffer; pgx sets our own when this is nil.
		cfg.OnNotification = nil
		// Named in pg_stat_activity, for operators (and tests).
		cfg.RuntimeParams = maps.Clone(cfg.RuntimeParams)
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams["application_name"] = ApplicationName
		return nil
	})
	return cfg, err
}

// session runs one connection until it fails or ctx is done. live says
// whether delivery was ever proven on it. The connection counts as live
// only once a notification it sent itself has come back: a connection
// that merely accepted LISTEN proves nothing (a transaction-pooling proxy
// accepts it and then delivers nothing), and until then no notification
// renews the lease.
func (f *Follower) session(ctx context.Context, cfg *pgx.ConnConfig) (live bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, 2*f.heartbeat)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		f.lost()
		f.event("lost")
		cctx, cancel := context.WithTimeout(context.Background(), f.heartbeat)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	cctx, cancel = context.WithTimeout(ctx, 2*f.heartbeat)
	_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{f.channel}.Sanitize())
	cancel()
	if err != nil {
		return false, err
	}
	if f.afterListen != nil {
		f.afterListen(conn)
	}
	// beat sends the heartbeat awaited next.
	pending := ""
	beat := func() error {
		pending = heartbeatPrefix + rand.Text()
		pctx, cancel := context.WithTimeout(ctx, f.heartbeat)
		defer cancel()
		_, err := conn.Exec(pctx, "SELECT pg_notify($1, $2)", f.channel, pending)
		return err
	}
	if err := beat(); err != nil {
		return false, err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, f.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n != nil && pending != "" && n.Payload == pending:
			pending = ""
			f.renew()
			if !live {
				live = true
				f.log.LogAttrs(ctx, slog.LevelInfo, "following database notifications",
					slog.String("event", "pgnotify_live"), slog.String("channel", f.channel))
				f.event("live")
				continue
			}
			f.event("heartbeat")
			continue
		case err == nil && n != nil && strings.HasPrefix(n.Payload, heartbeatPrefix):
			continue // another Follower's heartbeat
		case err == nil && n != nil:
			if f.route == nil || f.route(n.Payload) {
				f.gen.Add(1)
			}
			if live {
				f.renew()
			}
			f.event("notified:" + n.Payload)
			continue
		case err == nil:
			return live, errors.New("pgnotify: notification lost by the driver")
		case ctx.Err() != nil:
			return live, ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return live, err
		}
		if pending != "" {
			return live, fmt.Errorf("pgnotify: own heartbeat notification not delivered within %v: notifications are not reaching this connection", f.heartbeat)
		}
		// A quiet heartbeat: prove that notifications still arrive.
		if err := beat(); err != nil {
			return live, err
		}
	}
}

// heartbeatPrefix starts the payload of a Follower's own heartbeat; every
// Follower on the channel ignores them.
const heartbeatPrefix = "pgnotify-heartbeat:"

// Cached is one value kept by a Follower's rules. The zero value is not
// usable; call NewCached. Values handed out are shared: callers must not
// modify them (copy before returning to users).
type Cached[T any] struct {
	f      *Follower
	maxAge int64 // nanoseconds; 0: no limit
	v      atomic.Pointer[entry[T]]
}

type entry[T any] struct {
	gen    uint64
	filled int64 // f.now() when the fill started
	v      T
}

// NewCached returns an empty value kept by f, and served for at most
// maxAge after it was read (0: as long as nothing changes), for data that
// also changes without a notification.
func NewCached[T any](f *Follower, maxAge time.Duration) *Cached[T] {
	return &Cached[T]{f: f, maxAge: int64(maxAge)}
}

// Get returns the kept value if it may be served now, else the answer of
// fill, which it keeps if the Follower stayed live and saw no change
// while fill ran (a change that overtook the query is never undone by its
// answer).
func (c *Cached[T]) Get(fill func() (T, error)) (T, error) {
	gen, live := c.f.Current()
	now := c.f.now()
	if live {
		if e := c.v.Load(); e != nil && e.gen == gen && (c.maxAge == 0 || now-e.filled < c.maxAge) {
			return e.v, nil
		}
	}
	v, err := fill()
	if err != nil || !live {
		return v, err
	}
	if gen2, live2 := c.f.Current(); live2 && gen2 == gen {
		c.v.Store(&entry[T]{gen: gen, filled: now, v: v})
	}
	return v, nil
}
