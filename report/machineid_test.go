package report

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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

// TestParseMachineIDHostile: each input is refused with the exact message
// that says what is wrong with it, so that a case meant for one check (all
// zero, say) cannot pass by tripping another.
func TestParseMachineIDHostile(t *testing.T) {
	const near = "0123456789abcdef0123456789abcdef"
	const m = "report: invalid machine ID: "
	length := func(n int) string { return m + strconv.Itoa(n) + " characters, want 32 hexadecimal characters" }
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", m + "empty"},
		{"only_newline", "\n", m + "empty"},
		{"uninitialized_first_boot", "uninitialized\n", m + `"uninitialized" (the machine has not completed its first boot)`},
		{"uninitialized_no_newline", "uninitialized", m + `"uninitialized" (the machine has not completed its first boot)`},
		{"all_zero", strings.Repeat("0", 32) + "\n", m + "all zero"},
		{"dashed_uuid_form", "01234567-89ab-cdef-0123-456789abcdef", length(36)},
		{"braced_uuid", "{" + near + "}", length(34)},
		{"short_by_one", near[:31], length(31)},
		{"long_by_one", near + "0", length(33)},
		{"two_newlines", near + "\n\n", length(33)},
		{"crlf", near + "\r\n", length(33)},
		{"trailing_space", near + " ", length(33)},
		{"leading_space", " " + near, length(33)},
		{"trailing_garbage_after_newline", near + "\nx", length(34)},
		{"non_hex_letter", near[:31] + "g", m + "non-hexadecimal character at offset 31"},
		{"nul_byte", near[:31] + "\x00", m + "non-hexadecimal character at offset 31"},
		{"hex_prefix", "0x" + near[:30], m + "non-hexadecimal character at offset 1"},
		{"unicode_digits", strings.Repeat("٠", 16), m + "non-hexadecimal character at offset 0"},
		{"huge", strings.Repeat("a", 1<<20), length(1 << 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMachineID(tc.in)
			if !errors.Is(err, ErrInvalidMachineID) {
				t.Fatalf("err = %v, want ErrInvalidMachineID", err)
			}
			// The input may be a real machine ID with a typo: the exact
			// messages above never echo it.
			if err.Error() != tc.want {
				t.Fatalf("err = %q, want %q", err, tc.want)
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

// TestReadMachineIDDefaultOrder checks the rule for an empty path on files
// the test writes: /etc/machine-id first, the D-Bus copy only when the
// former does not exist, and never when it exists but is invalid.
func TestReadMachineIDDefaultOrder(t *testing.T) {
	const etcID, dbusID = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	good, other := write("etc", etcID+"\n"), write("dbus", dbusID+"\n")
	uninit := write("uninit", "uninitialized\n")
	defer func(saved [2]string) { machineIDFiles = saved }(machineIDFiles)

	for _, tc := range []struct {
		name      string
		etc, dbus string
		want      string // hex, or "" for an error
		wantErr   error
	}{
		{"etc_wins", good, other, etcID, nil},
		{"dbus_when_etc_missing", missing, other, dbusID, nil},
		{"no_fallback_when_etc_uninitialized", uninit, other, "", ErrInvalidMachineID},
		{"both_missing", missing, missing, "", fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machineIDFiles = [2]string{tc.etc, tc.dbus}
			id, err := ReadMachineID("")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || id != ([16]byte{}) {
					t.Fatalf("ReadMachineID = %x, %v; want %v", id, err, tc.wantErr)
				}
				return
			}
			if err != nil || id != mustHex16(t, tc.want) {
				t.Fatalf("ReadMachineID = %x, %v; want %s", id, err, tc.want)
			}
		})
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
