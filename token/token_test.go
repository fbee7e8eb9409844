package token

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lpsec/lpsec/internal/testenv"

	"github.com/lpsec/lpsec/token/internal/core"
)

func TestGenerateIsCanonicalV4(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		tok, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("duplicate token after %d", len(seen))
		}
		seen[tok] = true
		u, err := Parse(tok)
		if err != nil {
			t.Fatalf("Parse(Generate()) = %v", err)
		}
		if u.String() != tok {
			t.Fatalf("Generate gave a non-canonical spelling")
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("version %d variant %v", u.Version(), u.Variant())
		}
	}
}

// TestParseHostile: every input below is refused with ErrMalformed, named by
// what it tries, and with the exact message: each must be refused for its
// own reason (a nil UUID as nil, not only as version 0), and no message may
// carry the input.
func TestParseHostile(t *testing.T) {
	const good = "0f8fad5b-d9cb-469f-a165-70867728950e"
	const m = "token: malformed token: "
	tests := []struct{ name, in, want string }{
		{"empty", "", m + "length 0, want 36"},
		{"urn_prefix", "urn:uuid:" + good, m + "length 45, want 36"},
		{"braces", "{" + good + "}", m + "length 38, want 36"},
		{"hex32_no_dashes", strings.ReplaceAll(good, "-", ""), m + "length 32, want 36"},
		{"nil_uuid", "00000000-0000-0000-0000-000000000000", m + "nil UUID"},
		{"max_uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff", m + "UUID version 15, want 4"},
		{"version1", "0f8fad5b-d9cb-169f-a165-70867728950e", m + "UUID version 1, want 4"},
		{"version7", "0f8fad5b-d9cb-769f-a165-70867728950e", m + "UUID version 7, want 4"},
		{"variant_ncs", "0f8fad5b-d9cb-469f-7165-70867728950e", m + "not the RFC 4122 variant"},
		{"variant_microsoft", "0f8fad5b-d9cb-469f-c165-70867728950e", m + "not the RFC 4122 variant"},
		{"variant_future", "0f8fad5b-d9cb-469f-e165-70867728950e", m + "not the RFC 4122 variant"},
		{"dash_moved", "0f8fad5bd-9cb-469f-a165-70867728950e", m + "want '-' at offset 8"},
		{"dash_replaced_by_space", "0f8fad5b d9cb-469f-a165-70867728950e", m + "want '-' at offset 8"},
		{"non_hex_letter", "0f8fad5b-d9cb-469f-a165-70867728950g", m + "non-hex character near offset 34"},
		{"plus_sign_hex", "+f8fad5b-d9cb-469f-a165-70867728950e", m + "non-hex character near offset 0"},
		{"trailing_newline", good + "\n", m + "length 37, want 36"},
		{"leading_space", " " + good, m + "length 37, want 36"},
		{"truncated", good[:35], m + "length 35, want 36"},
		{"nul_byte", good[:35] + "\x00", m + "non-hex character near offset 34"},
		// 36 bytes, so that they reach the character checks: a 3-byte
		// lookalike in place of 3 ASCII bytes.
		{"utf8_lookalike_dash", "0f8fad5b\u2010cb-469f-a165-70867728950e", m + "want '-' at offset 8"},
		{"fullwidth_digit", "\uff10" + good[3:], m + "non-hex character near offset 0"},
		{"huge", strings.Repeat("a", 1<<20), m + "length 1048576, want 36"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, %v; want ErrMalformed", u, err)
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse error %q, want %q", err, tt.want)
			}
			if u != uuid.Nil {
				t.Fatalf("Parse returned %v with an error", u)
			}
		})
	}
}

func TestParseAcceptsEitherCase(t *testing.T) {
	for _, s := range []string{
		"0f8fad5b-d9cb-469f-a165-70867728950e",
		"0F8FAD5B-D9CB-469F-A165-70867728950E",
		"0f8FAD5b-d9Cb-469F-b165-70867728950e", // variant 10 with b
	} {
		u, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", s, err)
		}
		if u.String() != strings.ToLower(s) {
			t.Fatalf("Parse(%q) = %v", s, u)
		}
	}
}

// TestIDKnownAnswers checks record IDs against digests computed with
// openssl (testdata/good_digests.txt), in both letter cases.
func TestIDKnownAnswers(t *testing.T) {
	f, err := os.Open("testdata/good_digests.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		id, err := ID(fields[0])
		if err != nil {
			t.Fatal(err)
		}
		if id != fields[1] {
			t.Errorf("ID(%s) = %s, want %s", fields[0], id, fields[1])
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vectors")
	}
}

// TestIDMatchesOpenSSL computes the digest of a fresh token with openssl.
func TestIDMatchesOpenSSL(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "openssl")
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := Parse(tok)
	cmd := exec.Command(openssl, "dgst", "-sha256", "-r")
	cmd.Stdin = strings.NewReader(string(u[:]))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ID(tok)
	if got := strings.Fields(string(out))[0]; got != id {
		t.Fatalf("openssl says %s, ID says %s", got, id)
	}
}

// TestParseAcceptsPeerUUIDs: version 4 UUIDs from systemd-id128 and Python
// are tokens Parse accepts.
func TestParseAcceptsPeerUUIDs(t *testing.T) {
	t.Run("systemd-id128", func(t *testing.T) {
		bin := testenv.LookPath(t, "systemd-id128", "systemd")
		out, err := exec.Command(bin, "new", "--uuid").Output()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(strings.TrimSpace(string(out))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("python3", func(t *testing.T) {
		bin := testenv.LookPath(t, "python3", "python3")
		out, err := exec.Command(bin, "-c", "import uuid; print(str(uuid.uuid4()).upper()); print(uuid.uuid1())").Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(out))
		if _, err := Parse(lines[0]); err != nil {
			t.Fatalf("uuid4: %v", err)
		}
		if _, err := Parse(lines[1]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("uuid1: %v, want ErrMalformed", err)
		}
	})
}

func TestParseIDHostile(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for name, in := range map[string]string{
		"empty":     "",
		"short":     good[:63],
		"long":      good + "a",
		"non_hex":   good[:63] + "g",
		"a_token":   "0f8fad5b-d9cb-469f-a165-70867728950e",
		"uppercase": strings.ToUpper(good[:63]) + "z",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := core.ParseID(in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseID = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzParse checks Parse against google/uuid: on 36-byte input, Parse
// accepts exactly what uuid.Parse accepts as a version 4, RFC 4122 UUID; on
// any other length it accepts nothing.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0f8fad5b-d9cb-469f-a165-70867728950e",
		"0F8FAD5B-D9CB-469F-A165-70867728950E",
		"urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
		"{0f8fad5b-d9cb-469f-a165-70867728950e}",
		"0f8fad5bd9cb469fa16570867728950e",
		"00000000-0000-0000-0000-000000000000",
		"0f8fad5b-d9cb-169f-a165-70867728950e",
		"0f8fad5b-d9cb-469f-c165-70867728950e",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if u != uuid.Nil {
				t.Fatal("non-nil UUID with an error")
			}
		}
		ref, refErr := uuid.Parse(s)
		refOK := refErr == nil && len(s) == 36 && ref.Version() == 4 && ref.Variant() == uuid.RFC4122
		if (err == nil) != refOK {
			t.Fatalf("Parse ok=%v, reference ok=%v (%v)", err == nil, refOK, refErr)
		}
		if err == nil {
			if u != ref || u.String() != strings.ToLower(s) {
				t.Fatalf("Parse = %v, reference %v", u, ref)
			}
			if _, err := ID(s); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzListMachines: whatever cursor and limit a caller sends (they come
// from an admin's query string), ListMachines never panics, refuses with
// ErrMalformed (cursor) or ErrInvalid (limit), and otherwise returns at
// most limit records and a cursor it accepts again.
func FuzzListMachines(f *testing.F) {
	ctx := context.Background()
	s, err := NewMemoryStore()
	if err != nil {
		f.Fatal(err)
	}
	reg, _, err := s.IssueRegistration(ctx, Registration{Tier: "t", Name: "n", Uses: Unlimited})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := s.Register(ctx, reg, strconv.Itoa(i)); err != nil {
			f.Fatal(err)
		}
	}
	for _, sd := range []struct {
		after string
		limit int
	}{{"", 2}, {"1", 1}, {"3", 1000}, {"0", 1}, {"01", 1}, {"-1", 1}, {"9223372036854775807", 1},
		{"99999999999999999999", 1}, {"1 OR 1=1", 5}, {"", 0}, {"", 1001}, {"", -1}} {
		f.Add(sd.after, sd.limit)
	}
	f.Fuzz(func(t *testing.T, after string, limit int) {
		page, next, err := s.ListMachines(ctx, after, limit)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrInvalid", err)
			}
			if page != nil || next != "" {
				t.Fatal("records with an error")
			}
			return
		}
		if len(page) > limit {
			t.Fatalf("%d records for limit %d", len(page), limit)
		}
		if next != "" {
			if _, _, err := s.ListMachines(ctx, next, 1); err != nil {
				t.Fatalf("next cursor %q refused: %v", next, err)
			}
		}
	})
}
