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

// Errors from decoding and validating reports. Field-level errors come as a
// *FieldError wrapping one of these.
var (
	// ErrReportTooLarge means the encoded report exceeds MaxReportSize.
	ErrReportTooLarge = errors.New("report: report too large")

	// ErrMalformedReport means the input is not one JSON object holding
	// valid UTF-8, or has data after the object.
	ErrMalformedReport = errors.New("report: malformed report")

	// ErrUnknownField means the report has a field this package does not
	// define. Names match exactly: "CPU_Model" is unknown.
	ErrUnknownField = errors.New("report: unknown field")

	// ErrDuplicateField means a field appears twice. JSON decoders disagree
	// on which copy wins, so the report is refused.
	ErrDuplicateField = errors.New("report: duplicate field")

	// ErrMissingField means a required field (machine_id, patch_state) is
	// absent.
	ErrMissingField = errors.New("report: missing field")

	// ErrInvalidField means a field has the wrong JSON type, is null, is
	// longer than MaxFieldLen, or holds control characters.
	ErrInvalidField = errors.New("report: invalid field")

	// ErrTimeOutOfRange means a timestamp or duration is outside the sane
	// range: before 2000-01-01, more than a day in the future, or an uptime
	// that is negative or longer than 100 years.
	ErrTimeOutOfRange = errors.New("report: time out of range")
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

// FieldError is a refusal of one field of a report. Err wraps one of the
// package's sentinel errors, so errors.Is works through a FieldError.
type FieldError struct {
	Field string // the JSON field name
	Err   error
}

func (e *FieldError) Error() string {
	return "report: field " + e.Field + ": " + strings.TrimPrefix(e.Err.Error(), "report: ")
}

func (e *FieldError) Unwrap() error { return e.Err }

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
// validates it against now (normally time.Now()). It refuses, with an error
// wrapping the matching sentinel, input longer than MaxReportSize, anything
// but a single JSON object of valid UTF-8, unknown, duplicate, missing or
// null fields, strings longer than MaxFieldLen or holding control
// characters, an unknown patch state, a malformed hashed machine ID, and
// times out of range (see ErrTimeOutOfRange). Decode reads rd to its end or
// to MaxReportSize+1 bytes, whichever comes first.
func Decode(rd io.Reader, now time.Time) (Report, error) {
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
	if err := r.Validate(now); err != nil {
		return Report{}, err
	}
	return r, nil
}

// parseReport converts the JSON object in b to a Report, checking syntax,
// field names and JSON types; validateShape checks the values.
func parseReport(b []byte) (Report, error) {
	var r Report
	if !utf8.Valid(b) {
		return r, fmt.Errorf("%w: not valid UTF-8", ErrMalformedReport)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return r, fmt.Errorf("%w: want a JSON object", ErrMalformedReport)
	}
	var seen [len(fieldNames)]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Report{}, fmt.Errorf("%w: %v", ErrMalformedReport, err)
		}
		name, _ := tok.(string) // object keys are always strings
		f := fieldIndex(name)
		if f < 0 {
			return Report{}, fmt.Errorf("%w: %s", ErrUnknownField, quoteBounded(name))
		}
		if seen[f] {
			return Report{}, &FieldError{name, ErrDuplicateField}
		}
		seen[f] = true
		tok, err = dec.Token()
		if err != nil {
			return Report{}, fmt.Errorf("%w: %v", ErrMalformedReport, err)
		}
		if err := r.set(f, tok); err != nil {
			return Report{}, &FieldError{name, err}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return Report{}, fmt.Errorf("%w: unterminated object", ErrMalformedReport)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Report{}, fmt.Errorf("%w: data after the report", ErrMalformedReport)
	}
	for _, f := range []int{fMachineID, fPatchState} {
		if !seen[f] {
			return Report{}, &FieldError{fieldNames[f], ErrMissingField}
		}
	}
	return r, nil
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
			return fmt.Errorf("%w: want a whole number of seconds", ErrInvalidField)
		}
		s, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || s < 0 || s > int64(maxUptime/time.Second) {
			return fmt.Errorf("%w: want whole seconds from 0 to %d", ErrTimeOutOfRange, int64(maxUptime/time.Second))
		}
		r.Uptime = time.Duration(s) * time.Second
		return nil
	}
	s, ok := tok.(string)
	if !ok {
		return fmt.Errorf("%w: want a string", ErrInvalidField)
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
	return err
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: want an RFC 3339 time", ErrInvalidField)
	}
	// Checked here as well as in validateShape because the zero time
	// ("0001-01-01T00:00:00Z") would otherwise pass as "unknown".
	if t.Before(minTime) {
		return time.Time{}, fmt.Errorf("%w: want %s to year 9999", ErrTimeOutOfRange, minTime.Format(time.DateOnly))
	}
	return t.UTC(), nil
}

// checkString enforces the bounds on every string field. Control characters
// are refused because these strings end up in logs and admin screens.
func checkString(s string) error {
	if len(s) > MaxFieldLen {
		return fmt.Errorf("%w: %d bytes, want at most %d", ErrInvalidField, len(s), MaxFieldLen)
	}
	for i, c := range s {
		if c < 0x20 || c == 0x7f || 0x80 <= c && c <= 0x9f || c == utf8.RuneError {
			return fmt.Errorf("%w: control or invalid character at byte %d", ErrInvalidField, i)
		}
	}
	return nil
}

// Validate checks r as Decode does: required fields present, strings
// bounded, times after 2000-01-01 and at most a day after now, uptime
// within 0 to 100 years. Errors are *FieldError values wrapping a sentinel.
func (r *Report) Validate(now time.Time) error {
	if err := r.validateShape(); err != nil {
		return err
	}
	latest := now.Add(maxClockSkew)
	for _, f := range []struct {
		name string
		t    time.Time
	}{{fieldNames[fBootTime], r.BootTime}, {fieldNames[fLastCheck], r.LastCheck}} {
		if f.t.After(latest) {
			return &FieldError{f.name, fmt.Errorf("%w: more than %v after the current time", ErrTimeOutOfRange, maxClockSkew)}
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
			return &FieldError{f.name, err}
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{fieldNames[fBootTime], r.BootTime}, {fieldNames[fLastCheck], r.LastCheck}} {
		if !f.t.IsZero() && (f.t.Before(minTime) || f.t.Year() > 9999) {
			return &FieldError{f.name, fmt.Errorf("%w: want %s to year 9999", ErrTimeOutOfRange, minTime.Format(time.DateOnly))}
		}
	}
	if r.Uptime < 0 || r.Uptime > maxUptime {
		return &FieldError{fieldNames[fUptime], fmt.Errorf("%w: want 0 to 100 years", ErrTimeOutOfRange)}
	}
	if r.MachineID.IsZero() {
		return &FieldError{fieldNames[fMachineID], ErrMissingField}
	}
	if r.PatchState >= numPatchStates {
		return &FieldError{fieldNames[fPatchState], fmt.Errorf("%w: %d", ErrInvalidPatchState, uint8(r.PatchState))}
	}
	return nil
}
