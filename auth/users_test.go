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
// the reason ErrInvalidUsers must give for refusing it.
var hostileUsers = map[string]struct {
	spec string
	want string // the error after "auth: invalid users: "
}{
	"empty spec":                    {"", "empty spec"},
	"only spaces":                   {"  \n ", "empty spec"},
	"trailing comma":                {"alice:" + bcryptSample + ",", "entry 2: not user:hash"},
	"empty entry in the middle":     {"alice:" + bcryptSample + ",,bob:" + bcryptSample, "entry 2: not user:hash"},
	"no colon":                      {"alice", "entry 1: not user:hash"},
	"empty user":                    {":" + bcryptSample, "entry 1: empty user name"},
	"control char in user":          {"al\x00ice:" + bcryptSample, "entry 1: user name is not UTF-8 or holds control characters"},
	"C1 control in user":            {"al\u0085ice:" + bcryptSample, "entry 1: user name is not UTF-8 or holds control characters"},
	"invalid UTF-8 user":            {"al\xffice:" + bcryptSample, "entry 1: user name is not UTF-8 or holds control characters"},
	"user too long":                 {strings.Repeat("a", 257) + ":" + bcryptSample, "entry 1: user name longer than 256 bytes"},
	"duplicate user":                {"alice:" + bcryptSample + ",alice:" + argonExample, `entry 2: duplicate user "alice"`},
	"spec too large":                {strings.Repeat("a", maxUsersInput+1), "spec longer than 1048576 bytes"},
	"apr1 MD5":                      {"alice:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.", "entry 1: user \"alice\": stored hash is apr1-MD5 (htpasswd -m), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"SHA1":                          {"alice:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=", "entry 1: user \"alice\": stored hash is {SHA} SHA-1 (htpasswd -s), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"DES crypt":                     {"alice:xROXmIhxZpssA", "entry 1: user \"alice\": stored hash is DES crypt (htpasswd -d), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"MD5 crypt":                     {"alice:$1$abcdefgh$0123456789012345678901", "entry 1: user \"alice\": stored hash is MD5-crypt ($1$), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"SHA-256 crypt":                 {"alice:$5$saltsalt$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", "entry 1: user \"alice\": stored hash is SHA-256-crypt ($5$), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"SHA-512 crypt":                 {"alice:$6$saltsalt$abcdefghijklmnopqrstuvwxyz", "entry 1: user \"alice\": stored hash is SHA-512-crypt ($6$), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"plaintext":                     {"alice:hunter2", "entry 1: user \"alice\": stored hash is plaintext or unknown (htpasswd -p), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"empty hash":                    {"alice:", "entry 1: user \"alice\": stored hash is plaintext or unknown (htpasswd -p), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"argon2i":                       {"alice:$argon2i$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", "entry 1: user \"alice\": stored hash is argon2i, but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"legacy 2x bcrypt":              {"alice:$2x$10$" + bcryptSample[7:], "entry 1: user \"alice\": stored hash is legacy bcrypt variant, but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
	"bcrypt trailing garbage":       {"alice:" + bcryptSample + "X", `entry 1: user "alice": bcrypt hash is 61 bytes, want 60`},
	"bcrypt truncated":              {"alice:" + bcryptSample[:59], `entry 1: user "alice": bcrypt hash is 59 bytes, want 60`},
	"bcrypt cost not digits":        {"alice:$2y$1a$" + bcryptSample[7:], `entry 1: user "alice": bcrypt cost is not two digits`},
	"bcrypt bad alphabet":           {"alice:" + bcryptSample[:59] + "+", `entry 1: user "alice": bcrypt salt or hash outside the bcrypt alphabet`},
	"bcrypt cost 31":                {"alice:$2y$31$" + bcryptSample[7:], `entry 1: user "alice": bcrypt cost 31 outside [4, 14]`},
	"bcrypt cost 15":                {"alice:$2y$15$" + bcryptSample[7:], `entry 1: user "alice": bcrypt cost 15 outside [4, 14]`},
	"bcrypt cost 03":                {"alice:$2y$03$" + bcryptSample[7:], `entry 1: user "alice": bcrypt cost 3 outside [4, 14]`},
	"argon2id version 16":           {"alice:$argon2id$v=16$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id version is not v=19`},
	"argon2id no version":           {"alice:$argon2id$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id hash is not $argon2id$v=19$m=,t=,p=$salt$hash`},
	"argon2id 4 GiB memory":         {"alice:$argon2id$v=19$m=4194304,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id m=4194304,t=2,p=1 outside m in [8p, 262144], t in [1, 16], p in [1, 16]`},
	"argon2id memory overflow":      {"alice:$argon2id$v=19$m=99999999999,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id parameter m is not a canonical decimal`},
	"argon2id 1000 passes":          {"alice:$argon2id$v=19$m=19456,t=1000,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id m=19456,t=1000,p=1 outside m in [8p, 262144], t in [1, 16], p in [1, 16]`},
	"argon2id 255 lanes":            {"alice:$argon2id$v=19$m=19456,t=2,p=255$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id m=19456,t=2,p=255 outside m in [8p, 262144], t in [1, 16], p in [1, 16]`},
	"argon2id zero lanes":           {"alice:$argon2id$v=19$m=19456,t=2,p=0$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id m=19456,t=2,p=0 outside m in [8p, 262144], t in [1, 16], p in [1, 16]`},
	"argon2id params out of order":  {"alice:$argon2id$v=19$t=2,m=19456,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id parameters are not m=,t=,p=`},
	"argon2id leading zero":         {"alice:$argon2id$v=19$m=019456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id parameter m is not a canonical decimal`},
	"argon2id negative":             {"alice:$argon2id$v=19$m=-1,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id parameter m is not a canonical decimal`},
	"argon2id keyid parameter":      {"alice:$argon2id$v=19$m=19456,t=2,p=1,keyid=AAAA$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id parameters are not m=,t=,p=`},
	"argon2id short salt":           {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVA$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id salt must be 8 to 64 bytes of unpadded base64`},
	"argon2id short key":            {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E", `entry 1: user "alice": argon2id hash must be 16 to 64 bytes of unpadded base64`},
	"argon2id padded base64":        {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ=$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id salt must be 8 to 64 bytes of unpadded base64`},
	"argon2id newline in base64":    {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMV\nFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id salt must be 8 to 64 bytes of unpadded base64`},
	"argon2id non-canonical base64": {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFR$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0", `entry 1: user "alice": argon2id salt must be 8 to 64 bytes of unpadded base64`},
	"argon2id trailing dollar":      {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0$", `entry 1: user "alice": argon2id hash is not $argon2id$v=19$m=,t=,p=$salt$hash`},
	"argon2id huge key":             {"alice:$argon2id$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$" + strings.Repeat("A", 200), `entry 1: user "alice": argon2id hash must be 16 to 64 bytes of unpadded base64`},
}

func TestParseUsersHostile(t *testing.T) {
	for name, tc := range hostileUsers {
		t.Run(name, func(t *testing.T) {
			_, err := ParseUsers(tc.spec)
			if !errors.Is(err, ErrInvalidUsers) || err.Error() != "auth: invalid users: "+tc.want {
				t.Fatalf("err = %v\nwant ErrInvalidUsers: %s", err, tc.want)
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
		if !errors.Is(err, ErrInvalidUsers) {
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
		want string // the error after "auth: invalid users: "
	}{
		"line too long":      {"alice:" + strings.Repeat("x", maxLineLen+1) + "\n", "htpasswd line 1 longer than 4096 bytes"},
		"file too large":     {strings.Repeat("# comment\n", maxUsersInput/10+1), "htpasswd file longer than 1048576 bytes"},
		"duplicate":          {"alice:" + bcryptSample + "\nalice:" + bcryptSample + "\n", `htpasswd line 2: duplicate user "alice"`},
		"htdigest line":      {"alice:realm:0123456789abcdef0123456789abcdef\n", "htpasswd line 1: user \"alice\": stored hash is plaintext or unknown (htpasswd -p), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
		"apr1 line":          {"alice:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.\n", "htpasswd line 1: user \"alice\": stored hash is apr1-MD5 (htpasswd -m), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
		"no colon":           {"alice\n", "htpasswd line 1: not user:hash"},
		"NUL in user":        {"a\x00:" + bcryptSample + "\n", "htpasswd line 1: user name is not UTF-8 or holds control characters"},
		"too many users":     {manyUsers(maxUsers + 1), "htpasswd line 10001: more than 10000 users"},
		"argon2i stays bad":  {"alice:$argon2i$v=19$m=19456,t=2,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0\n", "htpasswd line 1: user \"alice\": stored hash is argon2i, but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 alice PASSWORD` or auth.HashPassword"},
		"bcrypt cost of 2^5": {"alice:$2y$05$" + bcryptSample[7:] + "\nbob:$2y$99$" + bcryptSample[7:], `htpasswd line 2: user "bob": bcrypt cost 99 outside [4, 14]`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadHtpasswd(strings.NewReader(tc.file))
			if !errors.Is(err, ErrInvalidUsers) || err.Error() != "auth: invalid users: "+tc.want {
				t.Fatalf("err = %v\nwant ErrInvalidUsers: %s", err, tc.want)
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
	if _, err := NewBasic(u5); !errors.Is(err, ErrInvalidUsers) ||
		err.Error() != "auth: invalid users: user \"alice\" has bcrypt cost 5, below the minimum 10: re-hash with `htpasswd -nbBC 10 alice PASSWORD`" {
		t.Fatalf("cost 5 by default: err = %v, want ErrInvalidUsers naming alice", err)
	}
	if _, err := NewBasic(u5, WithMinimumCost(5, 64, 1)); err != nil {
		t.Fatalf("cost 5 with lowered minimum: %v", err)
	}
	if _, err := NewBasic(u5, WithMinimumCost(6, 64, 1)); !errors.Is(err, ErrInvalidUsers) ||
		err.Error() != "auth: invalid users: user \"alice\" has bcrypt cost 5, below the minimum 6: re-hash with `htpasswd -nbBC 10 alice PASSWORD`" {
		t.Fatalf("cost 5 under minimum 6: err = %v", err)
	}
	ua, err := ParseUsers("bob:" + argonLow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBasic(ua); !errors.Is(err, ErrInvalidUsers) ||
		err.Error() != `auth: invalid users: user "bob" has argon2id m=64,t=1, below the minimum memory × passes 38912: re-hash with auth.HashPassword` {
		t.Fatalf("argon2id m=64,t=1 by default: err = %v, want ErrInvalidUsers", err)
	}
	// OWASP's 47104 KiB × 1 pass is as much work as 19456 × 2.
	u1, err := ParseUsers("bob:$argon2id$v=19$m=47104,t=1,p=1$U0FMVFNBTFQ$MRbrZM0xwYf4kXoe8E/8itAeLfUoF7wL96nlS2kRLA0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBasic(u1); err != nil {
		t.Fatalf("argon2id 47104×1: %v", err)
	}
	if _, err := NewBasic(Users{}, WithMinimumCost(3, 64, 1)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("minimum bcrypt cost 3: err = %v", err)
	}
}
