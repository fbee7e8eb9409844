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
			r, err := Decode(bytes.NewReader(b), testNow)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			// Round trip: what we encode, we decode to the same report.
			enc, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			r2, err := Decode(bytes.NewReader(enc), testNow)
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
	r, err := Decode(bytes.NewReader(b), testNow)
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
	if _, err := Decode(strings.NewReader(valid), testNow); err != nil {
		t.Fatalf("the base report is refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"oversized_body", valid[:len(valid)-1] + `,"x":"` + strings.Repeat("a", MaxReportSize) + `"}`, ErrReportTooLarge},
		{"empty_body", "", ErrMalformedReport},
		{"json_null", "null", ErrMalformedReport},
		{"json_array", "[" + valid + "]", ErrMalformedReport},
		{"json_string", `"report"`, ErrMalformedReport},
		{"two_reports_smuggled", valid + valid, ErrMalformedReport},
		{"trailing_garbage", valid + "x", ErrMalformedReport},
		{"truncated", valid[:len(valid)-1], ErrMalformedReport},
		{"invalid_utf8", strings.Replace(valid, "AMD EPYC", "AMD \xff EPYC", 1), ErrMalformedReport},
		{"bom_prefix", "\ufeff" + valid, ErrMalformedReport},
		{"unknown_field", valid[:len(valid)-1] + `,"hostname":"web1"}`, ErrUnknownField},
		{"raw_machine_id_field", valid[:len(valid)-1] + `,"raw_machine_id":"0123456789abcdef0123456789abcdef"}`, ErrUnknownField},
		{"case_folded_field_name", strings.Replace(valid, `"cpu_model"`, `"CPU_Model"`, 1), ErrUnknownField},
		{"duplicate_field_last_wins_trick", valid[:len(valid)-1] + `,"patch_state":"unapplied"}`, ErrDuplicateField},
		{"missing_machine_id", withField("machine_id", ""), ErrMissingField},
		{"missing_patch_state", withField("patch_state", ""), ErrMissingField},
		{"null_machine_id", withField("machine_id", "null"), ErrInvalidField},
		{"null_string_field", withField("cpu_model", "null"), ErrInvalidField},
		{"number_for_string", withField("kernel_version", "6"), ErrInvalidField},
		{"bool_for_string", withField("architecture", "true"), ErrInvalidField},
		{"nested_object", withField("cpu_model", `{"a":{"b":{}}}`), ErrInvalidField},
		{"nested_array", withField("client_version", `["1","2"]`), ErrInvalidField},
		{"string_too_long", withField("cpu_model", `"`+strings.Repeat("x", MaxFieldLen+1)+`"`), ErrInvalidField},
		{"escaped_string_too_long", withField("cpu_model", `"`+strings.Repeat(`\u0041`, MaxFieldLen+1)+`"`), ErrInvalidField},
		{"newline_log_injection", withField("client_version", `"1.0\nevent=admin_login"`), ErrInvalidField},
		{"ansi_escape", withField("cpu_model", `"\u001b[31mred"`), ErrInvalidField},
		{"nul_byte", withField("patch_version", `"1\u0000"`), ErrInvalidField},
		{"c1_control", withField("patch_version", `"1\u0085"`), ErrInvalidField},
		{"lone_surrogate", withField("patch_version", `"\ud800"`), ErrInvalidField},
		{"raw_machine_id_as_hashed", withField("machine_id", `"0123456789abcdef0123456789abcdef"`), ErrInvalidHashedID},
		{"raw_machine_id_with_key_label", withField("machine_id", `"k1:0123456789abcdef0123456789abcdef"`), ErrInvalidHashedID},
		{"hashed_id_uppercase", withField("machine_id", `"`+strings.ToUpper(testHashedID)+`"`), ErrInvalidHashedID},
		{"patch_state_unknown_name", withField("patch_state", `"pwned"`), ErrInvalidPatchState},
		{"patch_state_wrong_case", withField("patch_state", `"Applied"`), ErrInvalidPatchState},
		{"patch_state_padded", withField("patch_state", `" applied"`), ErrInvalidPatchState},
		{"patch_state_underscore", withField("patch_state", `"apply_failed"`), ErrInvalidPatchState},
		{"patch_state_number", withField("patch_state", `1`), ErrInvalidField},
		{"patch_state_empty", withField("patch_state", `""`), ErrInvalidPatchState},
		{"boot_time_not_rfc3339", withField("boot_time", `"Nov 1 2026"`), ErrInvalidField},
		{"boot_time_unix_number", withField("boot_time", `1793520000`), ErrInvalidField},
		{"boot_time_epoch_1970", withField("boot_time", `"1970-01-01T00:00:00Z"`), ErrTimeOutOfRange},
		{"boot_time_year_1", withField("boot_time", `"0001-01-01T00:00:00Z"`), ErrTimeOutOfRange},
		{"last_check_far_future", withField("last_check", `"9999-12-31T23:59:59Z"`), ErrTimeOutOfRange},
		{"last_check_two_days_ahead", withField("last_check", `"2026-11-24T12:00:01Z"`), ErrTimeOutOfRange},
		{"boot_time_future_via_offset", withField("boot_time", `"2026-11-24T00:00:00-14:00"`), ErrTimeOutOfRange},
		{"uptime_negative", withField("uptime_seconds", `-1`), ErrTimeOutOfRange},
		{"uptime_fractional", withField("uptime_seconds", `1.5`), ErrTimeOutOfRange},
		{"uptime_exponent", withField("uptime_seconds", `1e9`), ErrTimeOutOfRange},
		{"uptime_overflows_int64", withField("uptime_seconds", `99999999999999999999`), ErrTimeOutOfRange},
		{"uptime_overflows_duration", withField("uptime_seconds", `9223372036`), ErrTimeOutOfRange},
		{"uptime_string", withField("uptime_seconds", `"100"`), ErrInvalidField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in), testNow)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long: attacker input is echoed unbounded", len(err.Error()))
			}
		})
	}
}

func TestDecodeFieldError(t *testing.T) {
	_, err := Decode(strings.NewReader(withField("cpu_model", `"a\tb"`)), testNow)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "cpu_model" || !errors.Is(err, ErrInvalidField) {
		t.Fatalf("err = %#v, want *FieldError for cpu_model wrapping ErrInvalidField", err)
	}
}

// TestDecodeStopsReading checks that Decode reads at most MaxReportSize+1
// bytes of an endless body.
func TestDecodeStopsReading(t *testing.T) {
	body := &countingReader{r: io.MultiReader(strings.NewReader(`{"cpu_model":"`), neverEnding('a'))}
	if _, err := Decode(body, testNow); !errors.Is(err, ErrReportTooLarge) {
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
		name string
		r    Report
		want error
	}{
		{"no_machine_id", Report{PatchState: PatchApplied}, ErrMissingField},
		{"undefined_patch_state", Report{MachineID: id, PatchState: 200}, ErrInvalidPatchState},
		{"control_chars", Report{MachineID: id, CPUModel: "a\x1bb"}, ErrInvalidField},
		{"boot_before_2000", Report{MachineID: id, BootTime: time.Unix(0, 0)}, ErrTimeOutOfRange},
		{"negative_uptime", Report{MachineID: id, Uptime: -time.Second}, ErrTimeOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := json.Marshal(tc.r); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
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
