package report

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseMachineID(f *testing.F) {
	for _, s := range []string{
		"0123456789abcdef0123456789abcdef\n", "0123456789ABCDEF0123456789ABCDEF", "uninitialized\n", "",
		"00000000000000000000000000000000", "01234567-89ab-cdef-0123-456789abcdef", "0123456789abcdef0123456789abcdef\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseMachineID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidMachineID) {
				t.Fatalf("error %v does not wrap ErrInvalidMachineID", err)
			}
			return
		}
		// Whatever is accepted is exactly 32 hex digits, a newline at most,
		// and names a non-zero ID.
		canon := strings.TrimSuffix(s, "\n")
		if hex.EncodeToString(id[:]) != strings.ToLower(canon) || id == ([16]byte{}) {
			t.Fatalf("accepted %q as %x", s, id)
		}
	})
}

func FuzzParseHashedID(f *testing.F) {
	f.Add(testHashedID)
	f.Add("k1:" + strings.Repeat("A", 64))
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseHashedID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHashedID) {
				t.Fatalf("error %v does not wrap ErrInvalidHashedID", err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("accepted %q, which is not canonical (%q)", s, id)
		}
	})
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/good_report_*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(withField("cpu_model", `{"a":[1,2,{}]}`)))
	f.Add([]byte(withField("uptime_seconds", `1e9`)))
	f.Add([]byte(`{"machine_id":"k1:00","patch_state":"applied","patch_state":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(bytes.NewReader(b), atTestNow)
		if err != nil {
			// A refusal is either too large or a *FieldError naming a
			// known field (or none) and a reason.
			var fe *FieldError
			switch {
			case errors.Is(err, ErrReportTooLarge):
			case errors.As(err, &fe) && errors.Is(err, ErrInvalidReport) && fe.Reason != "" &&
				(fe.Field == "" || fieldIndex(fe.Field) >= 0) && len(err.Error()) <= 300:
			default:
				t.Fatalf("error %v is neither ErrReportTooLarge nor a bounded *FieldError", err)
			}
			return
		}
		// An accepted report re-encodes, and decodes to itself.
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		r2, err := Decode(bytes.NewReader(enc), atTestNow)
		if err != nil || !reportsEqual(r, r2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, r, r2)
		}
	})
}
