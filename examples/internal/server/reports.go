package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/ident"
	"github.com/lpsec/lpsec/report"
)

// StoredReport is api.StoredReport: the client package reads it without
// importing the server.
type StoredReport = api.StoredReport

type reportStore interface {
	put(ctx context.Context, r StoredReport) error
	list(ctx context.Context) ([]StoredReport, error)
}

type memReports struct {
	mu sync.Mutex
	m  map[string]StoredReport
}

// maxMemReports bounds the memory store: one entry per registered machine,
// but a bound all the same.
const maxMemReports = 100000

func newMemReports() *memReports { return &memReports{m: map[string]StoredReport{}} }

func (m *memReports) put(_ context.Context, r StoredReport) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[r.Machine]; !ok && len(m.m) >= maxMemReports {
		return errors.New("report store full")
	}
	m.m[r.Machine] = r
	return nil
}

func (m *memReports) list(context.Context) ([]StoredReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]StoredReport, 0, len(m.m))
	for _, r := range m.m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b StoredReport) int { return strings.Compare(a.Machine, b.Machine) })
	return out, nil
}

type pgReports struct {
	db      *sql.DB
	timeout time.Duration // bound on each call (--database-timeout)
}

func newPGReports(ctx context.Context, db *sql.DB) (*pgReports, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lpsec_example_reports (
		machine text PRIMARY KEY,
		received timestamptz NOT NULL,
		report jsonb NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("report store: create table: %w", err)
	}
	return &pgReports{db: db}, nil
}

func (p *pgReports) put(ctx context.Context, r StoredReport) error {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()
	_, err := p.db.ExecContext(ctx, `INSERT INTO lpsec_example_reports (machine, received, report) VALUES ($1, $2, $3)
		ON CONFLICT (machine) DO UPDATE SET received = $2, report = $3`, r.Machine, r.Received, string(r.Report))
	return err
}

func (p *pgReports) list(ctx context.Context) ([]StoredReport, error) {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()
	rows, err := p.db.QueryContext(ctx, `SELECT machine, received, report::text FROM lpsec_example_reports ORDER BY machine`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredReport
	for rows.Next() {
		var r StoredReport
		var js string
		if err := rows.Scan(&r.Machine, &r.Received, &js); err != nil {
			return nil, err
		}
		r.Report = json.RawMessage(js)
		out = append(out, r)
	}
	return out, rows.Err()
}

// identity recognises the hashed machine IDs of reports.
type identity struct {
	hasher *report.Hasher // nil: reports refused
}

func newIdentity(o Options, log *slog.Logger) (*identity, error) {
	if o.ReportKey == "" {
		log.Warn("no --report-key: machine reports will be refused", "event", "reports_disabled")
		return &identity{}, nil
	}
	h, err := ident.ParseReportKeys(o.ReportKey)
	if err != nil {
		return nil, fmt.Errorf("--report-key: %w", err)
	}
	return &identity{hasher: h}, nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if s.ident.hasher == nil {
		writeError(w, http.StatusServiceUnavailable, "reports_disabled", "this server has no --report-key")
		return
	}
	rep, err := report.Decode(http.MaxBytesReader(w, r.Body, maxReportBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, report.ErrReportTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "report too large")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_report", err.Error())
		return
	}
	current, err := s.ident.hasher.Recognize(rep.MachineID)
	if err != nil {
		s.log.Warn("report refused", "event", "report_refused", "reason", "unknown_key")
		writeError(w, http.StatusBadRequest, "bad_report", "machine ID not hashed under this deployment's report key")
		return
	}
	machine := r.PathValue("machine") // machineOnly: the token's own machine
	// Only the sender's own report: the hashed ID must be the machine
	// token's app-specific ID under a report key (report package doc).
	app, err := ident.ParseMachineName(machine)
	if err == nil {
		err = s.ident.hasher.VerifyOwner(app, rep.MachineID)
	}
	if err != nil {
		s.log.Warn("report refused", "event", "report_refused", "reason", "not_own_machine", "machine", machine)
		writeError(w, http.StatusForbidden, "not_own_machine", "the report's machine ID is not this machine token's machine")
		return
	}
	js, err := json.Marshal(rep)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_report", err.Error())
		return
	}
	if err := s.reports.put(r.Context(), StoredReport{Machine: machine, Received: time.Now().UTC(), Report: js}); err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "report store unavailable")
		return
	}
	s.log.Info("report received", "event", "report_received", "machine", machine, "machine_id_key", rep.MachineID.KeyID(),
		"patch_state", rep.PatchState.String(), "current_key", current)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	list, err := s.reports.list(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "report store unavailable")
		return
	}
	if list == nil {
		list = []StoredReport{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": list})
}
