// Package ratelog is a slog.Handler that keeps an outage from flooding the
// log: records that repeat (same "event", "reason" and message) are written
// once per interval, and the next line of that kind, or a summary when the
// interval ends, says how many were left out (attribute "suppressed").
// Events that matter one by one, such as a refused credential, are keyed
// by their source as well: each source keeps its own lines, a flood from one
// source is rate-limited like any repetition.
//
// Records below the handler's level (Warn by default: audit events such as
// an issued token are Info) pass through untouched. Memory is bounded: at
// most MaxKeys kinds are tracked; records of further kinds within an
// interval are counted together and summarised once.
//
// It is internal so that any lpsec package or example can use it without
// one of the six SDK packages importing another.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = 10 * time.Second
	DefaultMaxKeys  = 1024
	DefaultBurst    = 3
)

// Options configure New. Zero fields take the defaults.
type Options struct {
	// Interval is how often one kind of record is written (DefaultInterval).
	Interval time.Duration
	// Level: records below it are not rate-limited (default slog.LevelWarn).
	Level slog.Leveler
	// Individual lists the events keyed per source (ContextWithSource):
	// each source gets Burst lines per interval of each such event.
	Individual []string
	// Burst is how many records of one individual event and source are
	// written per interval before the rest are counted (DefaultBurst).
	// Other kinds get one line per interval.
	Burst int
	// MaxKeys bounds the kinds tracked at once (DefaultMaxKeys).
	MaxKeys int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

type sourceKey struct{}

// ContextWithSource records the client a request came from (for example
// its IP address), so that individual events logged with ctx are keyed by
// it and carry it as the "source" attribute.
func ContextWithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

type key struct {
	event, reason, msg, source string
	level                      slog.Level
}

type entry struct {
	start      time.Time
	written    int
	suppressed int
	last       slog.Record // the last suppressed record, for the summary
	h          slog.Handler
}

type state struct {
	mu         sync.Mutex
	o          Options
	individual map[string]bool
	keys       map[key]*entry
	overflow   entry // records of kinds past MaxKeys
	lastSweep  time.Time
}

// Handler is the rate-limiting slog.Handler.
type Handler struct {
	next  slog.Handler
	st    *state
	attrs []slog.Attr // from WithAttrs, searched for event and reason
	group bool        // after WithGroup, record attrs are not top level
}

// New returns a Handler writing to next.
func New(next slog.Handler, o Options) *Handler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Level == nil {
		o.Level = slog.LevelWarn
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	st := &state{o: o, individual: map[string]bool{}, keys: map[key]*entry{}}
	for _, e := range o.Individual {
		st.individual[e] = true
	}
	return &Handler{next: next, st: st}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.group {
		c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = c.group || name != ""
	return &c
}

func (h *Handler) keyOf(ctx context.Context, r slog.Record) key {
	k := key{msg: r.Message, level: r.Level}
	find := func(a slog.Attr) {
		switch a.Key {
		case "event":
			k.event = a.Value.String()
		case "reason":
			k.reason = a.Value.String()
		}
	}
	for _, a := range h.attrs {
		find(a)
	}
	if !h.group {
		r.Attrs(func(a slog.Attr) bool { find(a); return true })
	}
	if h.st.individual[k.event] {
		k.source, _ = ctx.Value(sourceKey{}).(string)
	}
	return k
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	if r.Level < st.o.Level.Level() {
		return h.next.Handle(ctx, r)
	}
	k := h.keyOf(ctx, r)
	if k.source != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("source", k.source))
	}
	now := st.o.Now()

	st.mu.Lock()
	due := st.sweep(now, k)
	e, ok := st.keys[k]
	burst := 1
	if k.source != "" || st.individual[k.event] {
		burst = st.o.Burst
	}
	var write bool
	var suppressed int
	switch {
	case !ok && len(st.keys) >= st.o.MaxKeys:
		// Too many kinds at once: count it with the others, summarised at
		// the end of the interval.
		if st.overflow.suppressed == 0 {
			st.overflow.start = now
		}
		st.overflow.suppressed++
		st.overflow.last, st.overflow.h = r.Clone(), h.next
	case !ok:
		st.keys[k] = &entry{start: now, written: 1}
		write = true
	case now.Sub(e.start) >= st.o.Interval:
		suppressed = e.suppressed
		*e = entry{start: now, written: 1}
		write = true
	case e.written < burst:
		e.written++
		write = true
	default:
		e.suppressed++
		e.last, e.h = r.Clone(), h.next
	}
	st.mu.Unlock()

	err := emit(ctx, due)
	if write {
		if suppressed > 0 {
			r = r.Clone()
			r.AddAttrs(slog.Int("suppressed", suppressed))
		}
		if err2 := h.next.Handle(ctx, r); err == nil {
			err = err2
		}
	}
	return err
}

type summary struct {
	h slog.Handler
	r slog.Record
}

func emit(ctx context.Context, due []summary) error {
	var err error
	for _, s := range due {
		if e := s.h.Handle(ctx, s.r); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// sweep, at most once per interval, forgets the kinds whose interval has
// ended and returns a summary line for each that suppressed records, except
// kind cur, whose count goes on the line being written; st.mu is held.
// Cost: one pass over at most MaxKeys entries per interval.
func (st *state) sweep(now time.Time, cur key) []summary {
	if now.Sub(st.lastSweep) < st.o.Interval {
		return nil
	}
	st.lastSweep = now
	var due []summary
	for k, e := range st.keys {
		if k == cur || now.Sub(e.start) < st.o.Interval {
			continue
		}
		if e.suppressed > 0 {
			due = append(due, summarise(e, e.last.Message))
		}
		delete(st.keys, k)
	}
	if st.overflow.suppressed > 0 && now.Sub(st.overflow.start) >= st.o.Interval {
		due = append(due, summarise(&st.overflow, "log records suppressed: too many distinct kinds"))
		st.overflow = entry{}
	}
	return due
}

func summarise(e *entry, msg string) summary {
	r := slog.NewRecord(e.last.Time, e.last.Level, msg, 0)
	e.last.Attrs(func(a slog.Attr) bool {
		if a.Key == "event" || a.Key == "reason" || a.Key == "source" {
			r.AddAttrs(a)
		}
		return true
	})
	r.AddAttrs(slog.Int("suppressed", e.suppressed))
	return summary{h: e.h, r: r}
}

// Flush writes the summaries of every kind with suppressed records now,
// whatever is left of its interval: call it at shutdown so no count is lost.
func (h *Handler) Flush(ctx context.Context) error {
	st := h.st
	st.mu.Lock()
	var due []summary
	for k, e := range st.keys {
		if e.suppressed > 0 {
			due = append(due, summarise(e, e.last.Message))
		}
		delete(st.keys, k)
	}
	if st.overflow.suppressed > 0 {
		due = append(due, summarise(&st.overflow, "log records suppressed: too many distinct kinds"))
		st.overflow = entry{}
	}
	st.mu.Unlock()
	return emit(ctx, due)
}
