package ratelog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(o Options) (*slog.Logger, *Handler, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	o.Now = clk.Now
	h := New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), o)
	return slog.New(h), h, &buf, clk
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func suppressedSum(ls []map[string]any) int {
	n := 0
	for _, l := range ls {
		if v, ok := l["suppressed"].(float64); ok {
			n += int(v)
		}
	}
	return n
}

// An outage: 1000 identical failures over 25 s give one line per 10 s
// interval, and the counts add up to every record.
func TestRepeatedFailuresOncePerInterval(t *testing.T) {
	log, h, buf, clk := newTest(Options{})
	ctx := context.Background()
	for range 1000 {
		log.Error("token store unavailable", "event", "token_store_unavailable", "op", "authenticate machine", "error", "timeout")
		clk.Advance(25 * time.Millisecond)
	}
	ls := lines(t, buf)
	if len(ls) != 3 { // t=0, t=10 s (suppressed 399), t=20 s (suppressed 399)
		t.Fatalf("%d lines for 1000 identical failures over 25 s, want 3: %v", len(ls), ls)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	flushed := lines(t, buf)
	if len(flushed) != 1 || flushed[0]["suppressed"] != float64(199) {
		t.Fatalf("Flush wrote %v, want one summary with suppressed 199", flushed)
	}
	if got := len(ls) + suppressedSum(append(ls, flushed...)); got != 1000 {
		t.Fatalf("records written + suppressed = %d, want 1000: %v %v", got, ls, flushed)
	}
	if ls[1]["suppressed"] != float64(399) || ls[1]["event"] != "token_store_unavailable" {
		t.Fatalf("second line %v, want the event with suppressed 399", ls[1])
	}
}

// A summary is written when the interval ends even if the failure stops,
// as soon as any other record passes through.
func TestSummaryAfterFailuresStop(t *testing.T) {
	log, _, buf, clk := newTest(Options{})
	for range 5 {
		log.Warn("x failed", "event", "x_failed", "reason", "r")
	}
	clk.Advance(DefaultInterval)
	log.Warn("other", "event", "y")
	ls := lines(t, buf)
	if len(ls) != 3 || ls[1]["msg"] != "x failed" || ls[1]["suppressed"] != float64(4) || ls[1]["reason"] != "r" {
		t.Fatalf("lines %v, want x, the summary of x with suppressed 4, y", ls)
	}
}

func TestDistinctKindsAndInfoPassThrough(t *testing.T) {
	log, _, buf, _ := newTest(Options{})
	for range 50 {
		log.Info("token issued", "event", "token_issued")
	}
	for range 10 {
		log.Warn("refused", "event", "e", "reason", "a")
		log.Warn("refused", "event", "e", "reason", "b")
		log.Warn("refused", "event", "f", "reason", "a")
		log.Warn("other message", "event", "e", "reason", "a")
		log.With("event", "e").Warn("refused", "reason", "a") // same kind as the first
	}
	if n := len(lines(t, buf)); n != 50+4 {
		t.Fatalf("%d lines, want 50 info lines and one per distinct (event, reason, message)", n)
	}
}

// Refused credentials keep their own lines per source, Burst per interval;
// a flood from one source does not hide another.
func TestIndividualEventsPerSource(t *testing.T) {
	log, _, buf, clk := newTest(Options{Individual: []string{"token_authn_failed"}})
	a := ContextWithSource(context.Background(), "192.0.2.1")
	b := ContextWithSource(context.Background(), "192.0.2.2")
	for range 100 {
		log.WarnContext(a, "token refused", "event", "token_authn_failed", "reason", "unknown")
	}
	log.WarnContext(b, "token refused", "event", "token_authn_failed", "reason", "unknown")
	ls := lines(t, buf)
	if len(ls) != DefaultBurst+1 {
		t.Fatalf("%d lines, want %d for source a and 1 for b: %v", len(ls), DefaultBurst, ls)
	}
	if ls[0]["source"] != "192.0.2.1" || ls[DefaultBurst]["source"] != "192.0.2.2" {
		t.Fatalf("lines %v do not name their sources", ls)
	}
	clk.Advance(DefaultInterval)
	log.WarnContext(a, "token refused", "event", "token_authn_failed", "reason", "unknown")
	ls = lines(t, buf)
	if suppressedSum(ls) != 100-DefaultBurst {
		t.Fatalf("after the interval %v, want suppressed %d for source a", ls, 100-DefaultBurst)
	}
}

// Memory is bounded: past MaxKeys kinds, records are counted together and
// summarised once per interval.
func TestMaxKeys(t *testing.T) {
	log, h, buf, clk := newTest(Options{MaxKeys: 10})
	for i := range 2000 {
		log.Warn(fmt.Sprintf("distinct %d", i), "event", "e")
	}
	if n := len(h.st.keys); n != 10 {
		t.Fatalf("%d kinds tracked, want MaxKeys 10", n)
	}
	if n := len(lines(t, buf)); n != 10 {
		t.Fatalf("%d lines, want 10", n)
	}
	clk.Advance(DefaultInterval)
	log.Warn("after", "event", "e")
	ls := lines(t, buf)
	if len(ls) != 2 || suppressedSum(ls) != 1990 {
		t.Fatalf("after the interval %v, want one overflow summary with suppressed 1990 and the new line", ls)
	}
	if n := len(h.st.keys); n != 1 {
		t.Fatalf("%d kinds tracked after the sweep, want 1", n)
	}
}
