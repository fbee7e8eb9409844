package report

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustHex16(t testing.TB, s string) [16]byte {
	t.Helper()
	var out [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad 16-byte hex %q", s)
	}
	copy(out[:], b)
	return out
}

func TestParseMachineIDGood(t *testing.T) {
	want := mustHex16(t, "0123456789abcdef0123456789abcdef")
	for _, s := range []string{
		"0123456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcdef\n",
		"0123456789ABCDEF0123456789ABCDEF\n",
		"0123456789aBcDeF0123456789AbCdEf",
	} {
		got, err := ParseMachineID(s)
		if err != nil || got != want {
			t.Errorf("ParseMachineID(%q) = %x, %v; want %x", s, got, err, want)
		}
	}
}

func TestParseMachineIDHostile(t *testing.T) {
	const near = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"only_newline", "\n"},
		{"uninitialized_first_boot", "uninitialized\n"},
		{"uninitialized_no_newline", "uninitialized"},
		{"all_zero", strings.Repeat("0", 32) + "\n"},
		{"dashed_uuid_form", "01234567-89ab-cdef-0123-456789abcdef"},
		{"braced_uuid", "{" + near + "}"},
		{"short_by_one", near[:31]},
		{"long_by_one", near + "0"},
		{"two_newlines", near + "\n\n"},
		{"crlf", near + "\r\n"},
		{"trailing_space", near + " "},
		{"leading_space", " " + near},
		{"trailing_garbage_after_newline", near + "\nx"},
		{"non_hex_letter", near[:31] + "g"},
		{"nul_byte", near[:31] + "\x00"},
		{"hex_prefix", "0x" + near[:30]},
		{"unicode_digits", strings.Repeat("٠", 16)},
		{"huge", strings.Repeat("a", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMachineID(tc.in)
			if !errors.Is(err, ErrInvalidMachineID) {
				t.Fatalf("err = %v, want ErrInvalidMachineID", err)
			}
			// The input may be a real machine ID with a typo: never echo it.
			if len(tc.in) > 16 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:16]) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

func TestReadMachineIDTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*_machine_id_*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no machine-id testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			id, err := ReadMachineID(f)
			if strings.HasPrefix(filepath.Base(f), "good_") {
				if err != nil || id != mustHex16(t, "0123456789abcdef0123456789abcdef") {
					t.Fatalf("ReadMachineID = %x, %v", id, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidMachineID) {
				t.Fatalf("err = %v, want ErrInvalidMachineID", err)
			}
		})
	}
}

func TestReadMachineIDMissing(t *testing.T) {
	_, err := ReadMachineID(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestReadMachineIDDefault(t *testing.T) {
	raw, err := os.ReadFile(etcMachineID)
	if err != nil {
		raw, err = os.ReadFile(dbusMachineID)
	}
	if err != nil {
		t.Skipf("skipped: this machine has neither %s nor %s", etcMachineID, dbusMachineID)
	}
	want, wantErr := ParseMachineID(string(raw))
	got, err := ReadMachineID("")
	if got != want || (err == nil) != (wantErr == nil) {
		t.Fatalf("ReadMachineID(\"\") disagrees with parsing the file (errors %v, %v)", err, wantErr)
	}
}

// appSpecificVectors reads testdata/good_app_specific.txt: known answers of
// systemd-id128 for machine IDs the test chose.
func appSpecificVectors(t testing.TB) [][3]string {
	f, err := os.Open("testdata/good_app_specific.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][3]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") || strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("bad vector line %q", sc.Text())
		}
		out = append(out, [3]string(fields))
	}
	if len(out) == 0 {
		t.Fatal("no vectors")
	}
	return out
}

func TestAppSpecificIDKnownAnswers(t *testing.T) {
	for _, v := range appSpecificVectors(t) {
		got, err := AppSpecificID(mustHex16(t, v[0]), mustHex16(t, v[1]))
		if err != nil || hex.EncodeToString(got[:]) != v[2] {
			t.Errorf("AppSpecificID(%s, %s) = %x, %v; systemd-id128 says %s", v[0], v[1], got, err, v[2])
		}
	}
}

func TestAppSpecificIDRefusesZero(t *testing.T) {
	mid := mustHex16(t, "0123456789abcdef0123456789abcdef")
	if _, err := AppSpecificID(mid, [16]byte{}); !errors.Is(err, ErrZeroAppID) {
		t.Errorf("zero app ID: err = %v, want ErrZeroAppID", err)
	}
	if _, err := AppSpecificID([16]byte{}, mid); !errors.Is(err, ErrInvalidMachineID) {
		t.Errorf("zero machine ID: err = %v, want ErrInvalidMachineID", err)
	}
}
