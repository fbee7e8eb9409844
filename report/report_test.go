package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// atTestNow makes Decode and Validate check times against testNow.
var atTestNow = WithClock(func() time.Time { return testNow })

const testHashedID = "k1:ea13de285f3ec9d0abb744e434edc82d20e8dbbce5016b361a69001f5583d5f3"

func TestDecodeGoodTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/good_report_*.json")
	if len(files) == 0 {
		t.Fatal("no good_report testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Decode(bytes.NewReader(b), atTestNow)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			// Round trip: what we encode, we decode to the same report.
			enc, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			r2, err := Decode(bytes.NewReader(enc), atTestNow)
			if err != nil {
				t.Fatalf("Decode(Marshal): %v\n%s", err, enc)
			}
			if !reportsEqual(r, r2) {
				t.Fatalf("round trip changed the report:\n%+v\n%+v", r, r2)
			}
			var r3 Report
			if err := json.Unmarshal(b, &r3); err != nil || !reportsEqual(r, r3) {
				t.Fatalf("json.Unmarshal = %+v, %v; want %+v", r3, err, r)
			}
		})
	}
}

func reportsEqual(a, b Report) bool {
	return a.BootTime.Equal(b.BootTime) && a.LastCheck.Equal(b.LastCheck) &&
		a.Architecture == b.Architecture && a.CPUModel == b.CPUModel && a.KernelVersion == b.KernelVersion &&
		a.Uptime == b.Uptime && a.MachineID == b.MachineID && a.PatchVersion == b.PatchVersion &&
		a.PatchState == b.PatchState && a.ClientVersion == b.ClientVersion
}

func TestDecodeTypicalFields(t *testing.T) {
	b, _ := os.ReadFile("testdata/good_report_typical.json")
	r, err := Decode(bytes.NewReader(b), atTestNow)
	if err != nil {
		t.Fatal(err)
	}
	if r.Architecture != "x86_64" || r.KernelVersion != "6.1.0-18-amd64" || r.Uptime != 1828800*time.Second ||
		r.PatchState != PatchApplied || r.MachineID.String() != testHashedID || r.ClientVersion != "10.8.1" ||
		!r.BootTime.Equal(time.Date(2026, 11, 1, 8, 15, 0, 0, time.UTC)) ||
		!r.LastCheck.Equal(time.Date(2026, 11, 22, 9, 30, 0, 5e8, time.UTC)) {
		t.Fatalf("decoded %+v", r)
	}
}

// withField returns a valid report in which field has the raw JSON value
// (or is removed, when value is "").
func withField(field, value string) string {
	fields := map[string]string{
		"architecture":   `"x86_64"`,
		"cpu_model":      `"AMD EPYC"`,
		"kernel_version": `"6.1.0-18-amd64"`,
		"boot_time":      `"2026-11-01T08:15:00Z"`,
		"uptime_seconds": `1828800`,
		"machine_id":     `"` + testHashedID + `"`,
		"patch_version":  `"98.1"`,
		"patch_state":    `"applied"`,
		"last_check":     `"2026-11-22T09:30:00Z"`,
		"client_version": `"10.8.1"`,
	}
	fields[field] = value
	var b strings.Builder
	b.WriteString("{")
	for _, name := range fieldNames {
		if fields[name] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"` + name + `":` + fields[name])
	}
	b.WriteString("}")
	return b.String()
}

func TestDecodeHostile(t *testing.T) {
	valid := withField("", "")
	if _, err := Decode(strings.NewReader(valid), atTestNow); err != nil {
		t.Fatalf("the base report is refused: %v", err)
	}
	oversized := valid[:len(valid)-1] + `,"x":"` + strings.Repeat("a", MaxReportSize) + `"}`
	if _, err := Decode(strings.NewReader(oversized), atTestNow); !errors.Is(err, ErrReportTooLarge) ||
		err.Error() != "report: report too large: more than 4096 bytes" {
		t.Fatalf("oversized body: err = %v, want ErrReportTooLarge", err)
	}
	for _, tc := range []struct {
		name   string
		in     string
		field  string // FieldError.Field
		reason string // FieldError.Reason
	}{
		{"missing_colon", `{"cpu_model" "x"}`, "cpu_model", "JSON syntax error at byte 13"},
		{"bad_literal", withField("cpu_model", "nul"), "cpu_model", "JSON syntax error at byte 37"},
		{"empty_body", "", "", "want a JSON object"},
		{"json_null", "null", "", "want a JSON object"},
		{"json_array", "[" + valid + "]", "", "want a JSON object"},
		{"json_string", `"report"`, "", "want a JSON object"},
		{"two_reports_smuggled", valid + valid, "", "data after the report"},
		{"trailing_garbage", valid + "x", "", "data after the report"},
		{"truncated", valid[:len(valid)-1], "", "unterminated object"},
		{"invalid_utf8", strings.Replace(valid, "AMD EPYC", "AMD \xff EPYC", 1), "", "not valid UTF-8"},
		{"bom_prefix", "\ufeff" + valid, "", "want a JSON object"},
		{"unknown_field", valid[:len(valid)-1] + `,"hostname":"web1"}`, "", `unknown field "hostname"`},
		{"raw_machine_id_field", valid[:len(valid)-1] + `,"raw_machine_id":"0123456789abcdef0123456789abcdef"}`, "", `unknown field "raw_machine_id"`},
		{"case_folded_field_name", strings.Replace(valid, `"cpu_model"`, `"CPU_Model"`, 1), "", `unknown field "CPU_Model"`},
		{"duplicate_field_last_wins_trick", valid[:len(valid)-1] + `,"patch_state":"unapplied"}`, "patch_state", "given twice"},
		{"missing_machine_id", withField("machine_id", ""), "machine_id", "missing"},
		{"missing_patch_state", withField("patch_state", ""), "patch_state", "missing"},
		{"null_machine_id", withField("machine_id", "null"), "machine_id", "want a string"},
		{"null_string_field", withField("cpu_model", "null"), "cpu_model", "want a string"},
		{"number_for_string", withField("kernel_version", "6"), "kernel_version", "want a string"},
		{"bool_for_string", withField("architecture", "true"), "architecture", "want a string"},
		{"nested_object", withField("cpu_model", `{"a":{"b":{}}}`), "cpu_model", "want a string"},
		{"nested_array", withField("client_version", `["1","2"]`), "client_version", "want a string"},
		{"string_too_long", withField("cpu_model", `"`+strings.Repeat("x", MaxFieldLen+1)+`"`), "cpu_model", "257 bytes, want at most 256"},
		{"escaped_string_too_long", withField("cpu_model", `"`+strings.Repeat(`\u0041`, MaxFieldLen+1)+`"`), "cpu_model", "257 bytes, want at most 256"},
		{"newline_log_injection", withField("client_version", `"1.0\nevent=admin_login"`), "client_version", "control or invalid character at byte 3"},
		{"ansi_escape", withField("cpu_model", `"\u001b[31mred"`), "cpu_model", "control or invalid character at byte 0"},
		{"nul_byte", withField("patch_version", `"1\u0000"`), "patch_version", "control or invalid character at byte 1"},
		{"c1_control", withField("patch_version", `"1\u0085"`), "patch_version", "control or invalid character at byte 1"},
		{"lone_surrogate", withField("patch_version", `"\ud800"`), "patch_version", "control or invalid character at byte 0"},
		{"raw_machine_id_as_hashed", withField("machine_id", `"0123456789abcdef0123456789abcdef"`), "machine_id", "invalid hashed machine ID: want <key ID>:<64 hexadecimal characters>"},
		{"raw_machine_id_with_key_label", withField("machine_id", `"k1:0123456789abcdef0123456789abcdef"`), "machine_id", "invalid hashed machine ID: want <key ID>:<64 hexadecimal characters>"},
		{"hashed_id_uppercase", withField("machine_id", `"`+strings.ToUpper(testHashedID)+`"`), "machine_id", "invalid hashed machine ID: not lowercase hexadecimal"},
		{"patch_state_unknown_name", withField("patch_state", `"pwned"`), "patch_state", `invalid patch state: "pwned"`},
		{"patch_state_wrong_case", withField("patch_state", `"Applied"`), "patch_state", `invalid patch state: "Applied"`},
		{"patch_state_padded", withField("patch_state", `" applied"`), "patch_state", `invalid patch state: " applied"`},
		{"patch_state_underscore", withField("patch_state", `"apply_failed"`), "patch_state", `invalid patch state: "apply_failed"`},
		{"patch_state_number", withField("patch_state", `1`), "patch_state", "want a string"},
		{"patch_state_empty", withField("patch_state", `""`), "patch_state", `invalid patch state: ""`},
		{"boot_time_not_rfc3339", withField("boot_time", `"Nov 1 2026"`), "boot_time", "want an RFC 3339 time"},
		{"boot_time_unix_number", withField("boot_time", `1793520000`), "boot_time", "want a string"},
		{"boot_time_epoch_1970", withField("boot_time", `"1970-01-01T00:00:00Z"`), "boot_time", "want 2000-01-01 to year 9999"},
		{"boot_time_year_1", withField("boot_time", `"0001-01-01T00:00:00Z"`), "boot_time", "want 2000-01-01 to year 9999"},
		{"last_check_far_future", withField("last_check", `"9999-12-31T23:59:59Z"`), "last_check", "more than 24h0m0s after the current time"},
		{"last_check_two_days_ahead", withField("last_check", `"2026-11-24T12:00:01Z"`), "last_check", "more than 24h0m0s after the current time"},
		{"boot_time_future_via_offset", withField("boot_time", `"2026-11-24T00:00:00-14:00"`), "boot_time", "more than 24h0m0s after the current time"},
		{"uptime_negative", withField("uptime_seconds", `-1`), "uptime_seconds", "want whole seconds from 0 to 3153600000"},
		{"uptime_fractional", withField("uptime_seconds", `1.5`), "uptime_seconds", "want whole seconds from 0 to 3153600000"},
		{"uptime_exponent", withField("uptime_seconds", `1e9`), "uptime_seconds", "want whole seconds from 0 to 3153600000"},
		{"uptime_overflows_int64", withField("uptime_seconds", `99999999999999999999`), "uptime_seconds", "want whole seconds from 0 to 3153600000"},
		{"uptime_overflows_duration", withField("uptime_seconds", `9223372036`), "uptime_seconds", "want whole seconds from 0 to 3153600000"},
		{"uptime_string", withField("uptime_seconds", `"100"`), "uptime_seconds", "want a whole number of seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in), atTestNow)
			var fe *FieldError
			if !errors.Is(err, ErrInvalidReport) || !errors.As(err, &fe) || fe.Field != tc.field || fe.Reason != tc.reason {
				t.Fatalf("err = %v\nwant ErrInvalidReport, field %q: %s", err, tc.field, tc.reason)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long: attacker input is echoed unbounded", len(err.Error()))
			}
		})
	}
}

func TestDecodeFieldError(t *testing.T) {
	_, err := Decode(strings.NewReader(withField("cpu_model", `"a\tb"`)), atTestNow)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "cpu_model" || !errors.Is(err, ErrInvalidReport) ||
		err.Error() != "report: invalid report: field cpu_model: control or invalid character at byte 1" {
		t.Fatalf("err = %#v, want *FieldError for cpu_model matching ErrInvalidReport", err)
	}
}

// TestDecodeStopsReading checks that Decode reads at most MaxReportSize+1
// bytes of an endless body.
func TestDecodeStopsReading(t *testing.T) {
	body := &countingReader{r: io.MultiReader(strings.NewReader(`{"cpu_model":"`), neverEnding('a'))}
	if _, err := Decode(body, atTestNow); !errors.Is(err, ErrReportTooLarge) {
		t.Fatalf("err = %v, want ErrReportTooLarge", err)
	}
	if body.n > MaxReportSize+1 {
		t.Fatalf("read %d bytes, want at most %d", body.n, MaxReportSize+1)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestMarshalRefusesInvalidReport(t *testing.T) {
	id, _ := ParseHashedID(testHashedID)
	for _, tc := range []struct {
		name          string
		r             Report
		field, reason string
	}{
		{"no_machine_id", Report{PatchState: PatchApplied}, "machine_id", "missing"},
		{"undefined_patch_state", Report{MachineID: id, PatchState: 200}, "patch_state", "undefined patch state 200"},
		{"control_chars", Report{MachineID: id, CPUModel: "a\x1bb"}, "cpu_model", "control or invalid character at byte 1"},
		{"boot_before_2000", Report{MachineID: id, BootTime: time.Unix(0, 0)}, "boot_time", "want 2000-01-01 to year 9999"},
		{"negative_uptime", Report{MachineID: id, Uptime: -time.Second}, "uptime_seconds", "want 0 to 100 years"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := json.Marshal(tc.r)
			var fe *FieldError
			if !errors.Is(err, ErrInvalidReport) || !errors.As(err, &fe) || fe.Field != tc.field || fe.Reason != tc.reason {
				t.Fatalf("err = %v, want ErrInvalidReport, field %q: %s", err, tc.field, tc.reason)
			}
		})
	}
}

func TestReportJSONFieldNamesStable(t *testing.T) {
	id, _ := ParseHashedID(testHashedID)
	b, err := json.Marshal(Report{
		Architecture: "x86_64", CPUModel: "c", KernelVersion: "k",
		BootTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Uptime: 90*time.Second + 999*time.Millisecond,
		MachineID: id, PatchVersion: "1", PatchState: PatchAppliedWithBug,
		LastCheck: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC), ClientVersion: "v",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"architecture":"x86_64","cpu_model":"c","kernel_version":"k","boot_time":"2026-01-02T02:04:05Z",` +
		`"uptime_seconds":90,"machine_id":"` + testHashedID + `","patch_version":"1","patch_state":"applied-with-bug",` +
		`"last_check":"2026-01-02T04:00:00Z","client_version":"v"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestPatchStates(t *testing.T) {
	want := []string{"unknown", "applied", "apply-failed", "unapplied", "needs-check", "nothing-to-apply",
		"check-failed", "applied-with-bug", "kernel-upgrade-required"}
	if len(want) != int(numPatchStates) {
		t.Fatalf("%d states defined, want %d", numPatchStates, len(want))
	}
	for _, name := range want {
		p, err := ParsePatchState(name)
		if err != nil || p.String() != name {
			t.Errorf("ParsePatchState(%q) = %v, %v", name, p, err)
		}
	}
	if PatchState(0) != PatchUnknown {
		t.Error("the zero PatchState is not PatchUnknown")
	}
	if s := PatchState(99).String(); s != "PatchState(99)" {
		t.Errorf("String of undefined state = %q", s)
	}
	if _, err := ParsePatchState(strings.Repeat("x", 1000)); !errors.Is(err, ErrInvalidPatchState) || len(err.Error()) > 100 {
		t.Errorf("long state: err = %v", err)
	}
}
