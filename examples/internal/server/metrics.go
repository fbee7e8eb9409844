package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, served on --metrics-listen
// (plain HTTP on a separate listener, so that the API listener never
// exposes them). They are documented in examples/README.md.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	events    *prometheus.CounterVec
	storeErrs *prometheus.CounterVec
	served    prometheus.Counter
	bytes     prometheus.Counter
	srv       *http.Server
	done      chan struct{}
}

func newMetrics() (*metrics, error) {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lpsec_http_requests_total",
		Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lpsec_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern (downloads include the transfer).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
	}, []string{"route"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lpsec_http_requests_in_flight",
		Help: "HTTP requests being answered.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lpsec_security_events_total",
		Help: `Log records with an "event" attribute (the lpsec packages' security events and the server's own), by event and reason.`,
	}, []string{"event", "reason"})
	m.storeErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lpsec_store_errors_total",
		Help: "Storage operations of the server that failed, by store (catalogue, incoming).",
	}, []string{"store"})
	m.served = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lpsec_patches_served_total",
		Help: "Patch downloads answered (whole or ranges).",
	})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lpsec_patch_bytes_served_total",
		Help: "Bytes of patch tarballs sent.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight, m.events, m.storeErrs, m.served, m.bytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// listen serves /metrics on addr until close; it returns the bound
// address.
func (m *metrics) listen(addr string, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "event", "metrics_failed", "error", err.Error())
		}
	}()
	log.Info("metrics listening", "event", "metrics_listening", "addr", ln.Addr().String())
	return ln.Addr().String(), nil
}

func (m *metrics) close() {
	if m.srv != nil {
		_ = m.srv.Close()
		<-m.done
	}
}

// instrument counts and times every request by its route pattern (the
// mux's, so labels stay few whatever paths clients send).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.inFlight.Add(1)
		s.metrics.inFlight.Inc()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			s.metrics.inFlight.Dec()
			s.inFlight.Add(-1)
			s.served.Add(1)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) storeError(store string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away; nothing wrong with the store
	}
	s.metrics.storeErrs.WithLabelValues(store).Inc()
	s.log.Warn("storage operation failed", "event", "store_error", "store", store, "error", err.Error())
}

func (s *Server) patchServed(n int64) {
	s.metrics.served.Inc()
	s.metrics.bytes.Add(float64(n))
}

// slogHandler feeds the security-event counter from log records, so
// every event of the lpsec packages (which log through the injected
// logger) is counted whatever --log-level keeps.
func (m *metrics) slogHandler(next slog.Handler) slog.Handler {
	return NewEventHandler(next, func(event, reason string) {
		m.events.WithLabelValues(event, reason).Inc()
	})
}

// NewEventHandler is a dependency-free slog bridge: it calls count with
// the "event" and "reason" attributes of every record at Info or above
// that has an event, then passes the record to next when next is enabled
// for its level. Label values that are not short snake_case words (a
// reason that is an error text) are counted as "other", so the number of
// series stays bounded whatever gets logged.
func NewEventHandler(next slog.Handler, count func(event, reason string)) slog.Handler {
	return &eventHandler{next: next, count: count}
}

type eventHandler struct {
	next          slog.Handler
	count         func(event, reason string)
	event, reason string // from WithAttrs
	grouped       bool   // attributes after WithGroup are not the record's own
}

var labelValue = regexp.MustCompile(`^[a-z0-9_]{1,48}$`)

func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		event, reason := h.event, h.reason
		if !h.grouped {
			r.Attrs(func(a slog.Attr) bool {
				switch a.Key {
				case "event":
					event = a.Value.String()
				case "reason":
					reason = a.Value.String()
				}
				return true
			})
		}
		if event != "" {
			h.count(label(event), label(reason))
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func label(v string) string {
	if v == "" || labelValue.MatchString(v) {
		return v
	}
	return "other"
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.grouped {
		for _, a := range as {
			switch a.Key {
			case "event":
				c.event = a.Value.String()
			case "reason":
				c.reason = a.Value.String()
			}
		}
	}
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if name != "" {
		c.grouped = true
	}
	return &c
}
