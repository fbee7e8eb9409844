package auth

import (
	"errors"
	"strings"
	"testing"
)

const (
	argonExample = "$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0"
	bcryptSample = "$2y$10$cWgCxqZBXJQ/GoqnnBb8.e/I7/Kwsn8c2BT4Du9cEXpTynLfxqvD2"
)

func TestParseUsersGood(t *testing.T) {
	for name, tc := range map[string]struct {
		spec  string
		users []string
	}{
		"single bcrypt":                 {"alice:" + bcryptSample, []string{"alice"}},
		"argon2id commas need no quote": {"alice:" + bcryptSample + ",bob:" + argonExample, []string{"alice", "bob"}},
		"argon2id first":                {"bob:" + argonExample + ",alice:" + bcryptSample, []string{"bob", "alice"}},
		"spaces around entries":         {" alice:" + bcryptSample + " , bob:" + argonExample + "\n", []string{"alice", "bob"}},
		"space inside name":             {"alice smith:" + bcryptSample, []string{"alice smith"}},
		"2a and 2b prefixes":            {"a:$2a$10$" + bcryptSample[7:] + ",b:$2b$10$" + bcryptSample[7:], []string{"a", "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := ParseUsers(tc.spec)
			if err != nil {
				t.Fatalf("ParseUsers: %v", err)
			}
			if u.Len() != len(tc.users) {
				t.Fatalf("Len = %d, want %d", u.Len(), len(tc.users))
			}
			for i, e := range u.entries {
				if e.name != tc.users[i] {
					t.Errorf("user %d = %q, want %q", i, e.name, tc.users[i])
				}
			}
		})
	}
}

// hostileUsers are specs an attacker or a mistake could produce, each with
// the sentinel that must refuse it.
var hostileUsers = map[string]struct {
	spec string
	want error
}{
	"empty spec":                    {"", ErrMalformedUsers},
	"only spaces":                   {"  \n ", ErrMalformedUsers},
	"trailing comma":                {"alice:" + bcryptSample + ",", ErrMalformedUsers},
	"empty entry in the middle":     {"alice:" + bcryptSample + ",,bob:" + bcryptSample, ErrMalformedUsers},
	"no colon":                      {"alice", ErrMalformedUsers},
	"empty user":                    {":" + bcryptSample, ErrMalformedUsers},
	"control char in user":          {"al\x00ice:" + bcryptSample, ErrMalformedUsers},
	"C1 control in user":            {"al\u0085ice:" + bcryptSample, ErrMalformedUsers},
	"invalid UTF-8 user":            {"al\xffice:" + bcryptSample, ErrMalformedUsers},
	"user too long":                 {strings.Repeat("a", 257) + ":" + bcryptSample, ErrMalformedUsers},
	"duplicate user":                {"alice:" + bcryptSample + ",alice:" + argonExample, ErrDuplicateUser},
	"spec too large":                {strings.Repeat("a", maxUsersInput+1), ErrMalformedUsers},
	"apr1 MD5":                      {"alice:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.", ErrUnsupportedHash},
	"SHA1":                          {"alice:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=", ErrUnsupportedHash},
	"DES crypt":                     {"alice:xROXmIhxZpssA", ErrUnsupportedHash},
	"MD5 crypt":                     {"alice:$1$abcdefgh$0123456789012345678901", ErrUnsupportedHash},
	"SHA-256 crypt":                 {"alice:$5$saltsalt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", ErrUnsupportedHash},
	"SHA-512 crypt":                 {"alice:$6$saltsalt$abcdefghijklmnopqrstuvwxyz", ErrUnsupportedHash},
	"plaintext":                     {"alice:hunter2", ErrUnsupportedHash},
	"empty hash":                    {"alice:", ErrUnsupportedHash},
	"argon2i":                       {"alice:$argon2i$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrUnsupportedHash},
	"legacy 2x bcrypt":              {"alice:$2x$10$" + bcryptSample[7:], ErrUnsupportedHash},
	"bcrypt trailing garbage":       {"alice:" + bcryptSample + "X", ErrMalformedHash},
	"bcrypt truncated":              {"alice:" + bcryptSample[:59], ErrMalformedHash},
	"bcrypt cost not digits":        {"alice:$2y$1a$" + bcryptSample[7:], ErrMalformedHash},
	"bcrypt bad alphabet":           {"alice:" + bcryptSample[:59] + "+", ErrMalformedHash},
	"bcrypt cost 31":                {"alice:$2y$31$" + bcryptSample[7:], ErrHashCost},
	"bcrypt cost 15":                {"alice:$2y$15$" + bcryptSample[7:], ErrHashCost},
	"bcrypt cost 03":                {"alice:$2y$03$" + bcryptSample[7:], ErrHashCost},
	"argon2id version 16":           {"alice:$argon2id$v=16$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id no version":           {"alice:$argon2id$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id 4 GiB memory":         {"alice:$argon2id$v=19$m=4194304,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrHashCost},
	"argon2id memory overflow":      {"alice:$argon2id$v=19$m=99999999999,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id 1000 passes":          {"alice:$argon2id$v=19$m=19456,t=1000,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrHashCost},
	"argon2id 255 lanes":            {"alice:$argon2id$v=19$m=19456,t=2,p=255$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrHashCost},
	"argon2id zero lanes":           {"alice:$argon2id$v=19$m=19456,t=2,p=0$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrHashCost},
	"argon2id params out of order":  {"alice:$argon2id$v=19$t=2,m=19456,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id leading zero":         {"alice:$argon2id$v=19$m=019456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id negative":             {"alice:$argon2id$v=19$m=-1,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id keyid parameter":      {"alice:$argon2id$v=19$m=19456,t=2,p=1,keyid=AAAA$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id short salt":           {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVA$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id short key":            {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E", ErrMalformedHash},
	"argon2id padded base64":        {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ=$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id newline in base64":    {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMV\nFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id non-canonical base64": {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFR$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", ErrMalformedHash},
	"argon2id trailing dollar":      {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0$", ErrMalformedHash},
	"argon2id huge key":             {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$" + strings.Repeat("A", 200), ErrMalformedHash},
}

func TestParseUsersHostile(t *testing.T) {
	for name, tc := range hostileUsers {
		t.Run(name, func(t *testing.T) {
			_, err := ParseUsers(tc.spec)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// The refusal names the user and the format and says how to re-hash; it
// never repeats the stored value, which may be a plaintext password.
func TestUnsupportedHashErrorSaysHowToRehash(t *testing.T) {
	for _, tc := range []struct{ spec, format string }{
		{"carol:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.", "apr1-MD5"},
		{"carol:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=", "{SHA}"},
		{"carol:xROXmIhxZpssA", "DES crypt"},
		{"carol:$1$abcdefgh$0123456789012345678901", "MD5-crypt"},
		{"carol:$5$saltsalt$abc", "SHA-256-crypt"},
		{"carol:$6$saltsalt$abc", "SHA-512-crypt"},
		{"carol:hunter2", "plaintext"},
	} {
		_, err := ParseUsers(tc.spec)
		if !errors.Is(err, ErrUnsupportedHash) {
			t.Fatalf("%s: err = %v", tc.format, err)
		}
		msg := err.Error()
		_, stored, _ := strings.Cut(tc.spec, ":")
		for _, want := range []string{`"carol"`, tc.format, "htpasswd -nbBC 10 carol", "auth.HashPassword"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not mention %q", tc.format, msg, want)
			}
		}
		if strings.Contains(msg, stored) {
			t.Errorf("%s: error %q echoes the stored value", tc.format, msg)
		}
	}
}

func TestReadHtpasswd(t *testing.T) {
	file := "# admins\r\n\r\nalice:" + bcryptSample + "\r\n   \n  # bob below\nbob:" + argonExample + "\n"
	u, err := ReadHtpasswd(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 || u.entries[0].name != "alice" || u.entries[1].name != "bob" {
		t.Fatalf("users = %+v", u.entries)
	}
	u, err = ReadHtpasswd(strings.NewReader("# only comments\n"))
	if err != nil || u.Len() != 0 {
		t.Fatalf("comments only: %v, %d users", err, u.Len())
	}
}

func TestReadHtpasswdHostile(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		want error
	}{
		"line too long":      {"alice:" + strings.Repeat("x", maxLineLen+1) + "\n", ErrMalformedUsers},
		"file too large":     {strings.Repeat("# comment\n", maxUsersInput/10+1), ErrMalformedUsers},
		"duplicate":          {"alice:" + bcryptSample + "\nalice:" + bcryptSample + "\n", ErrDuplicateUser},
		"htdigest line":      {"alice:realm:0123456789abcdef0123456789abcdef\n", ErrUnsupportedHash},
		"apr1 line":          {"alice:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.\n", ErrUnsupportedHash},
		"no colon":           {"alice\n", ErrMalformedUsers},
		"NUL in user":        {"a\x00:" + bcryptSample + "\n", ErrMalformedUsers},
		"too many users":     {manyUsers(maxUsers + 1), ErrMalformedUsers},
		"argon2i stays bad":  {"alice:$argon2i$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0\n", ErrUnsupportedHash},
		"bcrypt cost of 2^5": {"alice:$2y$05$" + bcryptSample[7:] + "\nbob:$2y$99$" + bcryptSample[7:], ErrHashCost},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadHtpasswd(strings.NewReader(tc.file))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func manyUsers(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("u")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(itoa(i))
		b.WriteString(":" + bcryptSample + "\n")
	}
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func TestMinimumCostAtLoad(t *testing.T) {
	hashes(t)
	u5, err := ParseUsers("alice:" + bcrypt5)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -B without -C writes cost 5: refused by default.
	if _, err := NewBasic(u5); !errors.Is(err, ErrHashCost) || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("cost 5 by default: err = %v, want ErrHashCost naming alice", err)
	}
	if _, err := NewBasic(u5, WithMinimumCost(5, 64, 1)); err != nil {
		t.Fatalf("cost 5 with lowered minimum: %v", err)
	}
	if _, err := NewBasic(u5, WithMinimumCost(6, 64, 1)); !errors.Is(err, ErrHashCost) {
		t.Fatalf("cost 5 under minimum 6: err = %v", err)
	}
	ua, err := ParseUsers("bob:" + argonLow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBasic(ua); !errors.Is(err, ErrHashCost) {
		t.Fatalf("argon2id m=64,t=1 by default: err = %v, want ErrHashCost", err)
	}
	// OWASP's 47104 KiB × 1 pass is as much work as 19456 × 2.
	u1, err := ParseUsers("bob:$argon2id$v=19$m=47104,t=1,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBasic(u1); err != nil {
		t.Fatalf("argon2id 47104×1: %v", err)
	}
	if _, err := NewBasic(Users{}, WithMinimumCost(3, 0, 0)); !errors.Is(err, ErrHashCost) {
		t.Fatalf("minimum bcrypt cost 3: err = %v", err)
	}
}
