package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors from decoding and validating reports.
var (
	// ErrInvalidReport means a report is refused: the input is not one
	// JSON object of valid UTF-8, a field is unknown, given twice, missing
	// or null, of the wrong JSON type, longer than MaxFieldLen, holds
	// control characters, is not a valid patch state or hashed machine ID,
	// or is a time out of range. The error is always a *FieldError saying
	// which field and why.
	ErrInvalidReport = errors.New("report: invalid report")

	// ErrReportTooLarge means the encoded report exceeds MaxReportSize
	// (an HTTP server answers 413 rather than 400).
	ErrReportTooLarge = errors.New("report: report too large")
)

// Bounds on reports received from clients.
const (
	// MaxReportSize bounds an encoded report. A typical one is about
	// 400 bytes.
	MaxReportSize = 4 << 10

	// MaxFieldLen bounds every string field, in bytes.
	MaxFieldLen = 256
)

var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	maxClockSkew = 24 * time.Hour
	maxUptime    = 100 * 365 * 24 * time.Hour
)

// FieldError is the refusal of a report: which field, and why. It
// matches ErrInvalidReport with errors.Is. The reason quotes no more of
// the input than a bounded field name or patch state, so it is safe to
// log and to send back to the client.
type FieldError struct {
	Field  string // the JSON field name, or "" when the report as a whole is at fault
	Reason string // what is wrong, e.g. "300 bytes, want at most 256"
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return ErrInvalidReport.Error() + ": " + e.Reason
	}
	return ErrInvalidReport.Error() + ": field " + e.Field + ": " + e.Reason
}

func (e *FieldError) Unwrap() error { return ErrInvalidReport }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Report is what a client tells the server about a machine. It can hold
// only a hashed machine ID, never the raw one.
//
// Empty strings and zero times or durations mean "unknown": Collect leaves
// a field so when it cannot read it, rather than guessing. The JSON field
// names (in the struct tags' order: architecture, cpu_model,
// kernel_version, boot_time, uptime_seconds, machine_id, patch_version,
// patch_state, last_check, client_version) are stable; times are RFC 3339
// in UTC, the uptime is whole seconds, and unknown times and uptime are
// omitted.
type Report struct {
	Architecture  string        // uname machine, e.g. "x86_64"
	CPUModel      string        // first "model name" of /proc/cpuinfo
	KernelVersion string        // uname release, e.g. "6.1.0-18-amd64"
	BootTime      time.Time     // when the machine booted
	Uptime        time.Duration // time since boot; whole seconds on the wire
	MachineID     HashedID      // required: Hasher.Hash of the machine ID
	PatchVersion  string        // version of the applied live patch
	PatchState    PatchState    // required on the wire
	LastCheck     time.Time     // last time the client checked for patches
	ClientVersion string        // version of the client software
}

type wireReport struct {
	Architecture  string     `json:"architecture"`
	CPUModel      string     `json:"cpu_model"`
	KernelVersion string     `json:"kernel_version"`
	BootTime      string     `json:"boot_time,omitempty"`
	UptimeSeconds int64      `json:"uptime_seconds,omitempty"`
	MachineID     HashedID   `json:"machine_id"`
	PatchVersion  string     `json:"patch_version"`
	PatchState    PatchState `json:"patch_state"`
	LastCheck     string     `json:"last_check,omitempty"`
	ClientVersion string     `json:"client_version"`
}

// MarshalJSON encodes r, refusing a report that Decode would refuse for
// its shape (see Validate): clients find their bugs before the server does.
func (r Report) MarshalJSON() ([]byte, error) {
	if err := r.validateShape(); err != nil {
		return nil, err
	}
	return json.Marshal(wireReport{
		Architecture:  r.Architecture,
		CPUModel:      r.CPUModel,
		KernelVersion: r.KernelVersion,
		BootTime:      formatTime(r.BootTime),
		UptimeSeconds: int64(r.Uptime / time.Second),
		MachineID:     r.MachineID,
		PatchVersion:  r.PatchVersion,
		PatchState:    r.PatchState,
		LastCheck:     formatTime(r.LastCheck),
		ClientVersion: r.ClientVersion,
	})
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// UnmarshalJSON decodes as strictly as Decode, except that it cannot check
// timestamps against the current time and does not bound the input size:
// servers should use Decode.
func (r *Report) UnmarshalJSON(data []byte) error {
	v, err := parseReport(data)
	if err != nil {
		return err
	}
	if err := v.validateShape(); err != nil {
		return err
	}
	*r = v
	return nil
}

// Decode reads one JSON report from rd, as a server receives it, and
// validates it against the current time (time.Now, or [WithClock]). It
// refuses input longer than MaxReportSize with ErrReportTooLarge, and with
// a *FieldError matching ErrInvalidReport anything but a single JSON
// object of valid UTF-8, unknown, duplicate, missing or null fields,
// strings longer than MaxFieldLen or holding control characters, an
// unknown patch state, a malformed hashed machine ID, and times out of
// range (see Report.Validate). Decode reads rd to its end or to
// MaxReportSize+1 bytes, whichever comes first. It accepts [WithClock].
func Decode(rd io.Reader, opts ...Option) (Report, error) {
	s, err := build("Decode", forDecode, opts)
	if err != nil {
		return Report{}, err
	}
	b, err := io.ReadAll(io.LimitReader(rd, MaxReportSize+1))
	if err != nil {
		return Report{}, fmt.Errorf("report: read report: %w", err)
	}
	if len(b) > MaxReportSize {
		return Report{}, fmt.Errorf("%w: more than %d bytes", ErrReportTooLarge, MaxReportSize)
	}
	r, err := parseReport(b)
	if err != nil {
		return Report{}, err
	}
	if err := r.validate(s.now()); err != nil {
		return Report{}, err
	}
	return r, nil
}

// parseReport converts the JSON object in b to a Report, checking syntax,
// field names and JSON types; validateShape checks the values.
func parseReport(b []byte) (Report, error) {
	var r Report
	if !utf8.Valid(b) {
		return r, invalid("", "not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return r, invalid("", "want a JSON object")
	}
	var seen [len(fieldNames)]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Report{}, invalid("", "%s", syntaxReason(err))
		}
		name, _ := tok.(string) // object keys are always strings
		f := fieldIndex(name)
		if f < 0 {
			return Report{}, invalid("", "unknown field %s", quoteBounded(name))
		}
		if seen[f] {
			return Report{}, invalid(name, "given twice")
		}
		seen[f] = true
		tok, err = dec.Token()
		if err != nil {
			return Report{}, invalid(name, "%s", syntaxReason(err))
		}
		if err := r.set(f, tok); err != nil {
			return Report{}, &FieldError{Field: name, Reason: err.Error()}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return Report{}, invalid("", "unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Report{}, invalid("", "data after the report")
	}
	for _, f := range []int{fMachineID, fPatchState} {
		if !seen[f] {
			return Report{}, invalid(fieldNames[f], "missing")
		}
	}
	return r, nil
}

// syntaxReason describes a JSON syntax error by its offset only: the
// decoder's own message quotes input and differs between Go releases.
func syntaxReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	return "JSON syntax error: unexpected end of input"
}

const (
	fArchitecture = iota
	fCPUModel
	fKernelVersion
	fBootTime
	fUptime
	fMachineID
	fPatchVersion
	fPatchState
	fLastCheck
	fClientVersion
)

var fieldNames = [...]string{
	fArchitecture:  "architecture",
	fCPUModel:      "cpu_model",
	fKernelVersion: "kernel_version",
	fBootTime:      "boot_time",
	fUptime:        "uptime_seconds",
	fMachineID:     "machine_id",
	fPatchVersion:  "patch_version",
	fPatchState:    "patch_state",
	fLastCheck:     "last_check",
	fClientVersion: "client_version",
}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

// quoteBounded quotes attacker-chosen text for an error message, cut short
// so errors and the logs they end up in stay small.
func quoteBounded(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func (r *Report) set(f int, tok json.Token) error {
	if f == fUptime {
		n, ok := tok.(json.Number)
		if !ok {
			return errors.New("want a whole number of seconds")
		}
		s, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || s < 0 || s > int64(maxUptime/time.Second) {
			return fmt.Errorf("want whole seconds from 0 to %d", int64(maxUptime/time.Second))
		}
		r.Uptime = time.Duration(s) * time.Second
		return nil
	}
	s, ok := tok.(string)
	if !ok {
		return errors.New("want a string")
	}
	if err := checkString(s); err != nil {
		return err
	}
	var err error
	switch f {
	case fArchitecture:
		r.Architecture = s
	case fCPUModel:
		r.CPUModel = s
	case fKernelVersion:
		r.KernelVersion = s
	case fPatchVersion:
		r.PatchVersion = s
	case fClientVersion:
		r.ClientVersion = s
	case fBootTime:
		r.BootTime, err = parseTime(s)
	case fLastCheck:
		r.LastCheck, err = parseTime(s)
	case fMachineID:
		r.MachineID, err = ParseHashedID(s)
	case fPatchState:
		r.PatchState, err = ParsePatchState(s)
	}
	if err != nil {
		// The parsers' errors are complete sentences under "report: ".
		return errors.New(strings.TrimPrefix(err.Error(), "report: "))
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time")
	}
	// Checked here as well as in validateShape because the zero time
	// ("0001-01-01T00:00:00Z") would otherwise pass as "unknown".
	if t.Before(minTime) {
		return time.Time{}, fmt.Errorf("want %s to year 9999", minTime.Format(time.DateOnly))
	}
	return t.UTC(), nil
}

// checkString enforces the bounds on every string field. Control characters
// are refused because these strings end up in logs and admin screens.
func checkString(s string) error {
	if len(s) > MaxFieldLen {
		return fmt.Errorf("%d bytes, want at most %d", len(s), MaxFieldLen)
	}
	for i, c := range s {
		if c < 0x20 || c == 0x7f || 0x80 <= c && c <= 0x9f || c == utf8.RuneError {
			return fmt.Errorf("control or invalid character at byte %d", i)
		}
	}
	return nil
}

// Validate checks r as Decode does: required fields present, strings
// bounded, times after 2000-01-01 and at most a day after the current
// time (time.Now, or [WithClock]), uptime within 0 to 100 years. A refusal
// is a *FieldError matching ErrInvalidReport. It accepts [WithClock].
func (r *Report) Validate(opts ...Option) error {
	s, err := build("Report.Validate", forDecode, opts)
	if err != nil {
		return err
	}
	return r.validate(s.now())
}

func (r *Report) validate(now time.Time) error {
	if err := r.validateShape(); err != nil {
		return err
	}
	latest := now.Add(maxClockSkew)
	for _, f := range []struct {
		name string
		t    time.Time
	}{{fieldNames[fBootTime], r.BootTime}, {fieldNames[fLastCheck], r.LastCheck}} {
		if f.t.After(latest) {
			return invalid(f.name, "more than %v after the current time", maxClockSkew)
		}
	}
	return nil
}

// validateShape checks everything that does not depend on the current time.
func (r *Report) validateShape() error {
	for _, f := range []struct {
		name, s string
	}{
		{fieldNames[fArchitecture], r.Architecture},
		{fieldNames[fCPUModel], r.CPUModel},
		{fieldNames[fKernelVersion], r.KernelVersion},
		{fieldNames[fPatchVersion], r.PatchVersion},
		{fieldNames[fClientVersion], r.ClientVersion},
	} {
		if err := checkString(f.s); err != nil {
			return &FieldError{Field: f.name, Reason: err.Error()}
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{fieldNames[fBootTime], r.BootTime}, {fieldNames[fLastCheck], r.LastCheck}} {
		if !f.t.IsZero() && (f.t.Before(minTime) || f.t.Year() > 9999) {
			return invalid(f.name, "want %s to year 9999", minTime.Format(time.DateOnly))
		}
	}
	if r.Uptime < 0 || r.Uptime > maxUptime {
		return invalid(fieldNames[fUptime], "want 0 to 100 years")
	}
	if r.MachineID.IsZero() {
		return invalid(fieldNames[fMachineID], "missing")
	}
	if r.PatchState >= numPatchStates {
		return invalid(fieldNames[fPatchState], "undefined patch state %d", uint8(r.PatchState))
	}
	return nil
}
