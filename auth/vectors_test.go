package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Vectors written once by the real htpasswd and argon2 tools (see the
// first line of each file), so that these checks run without the tools.
var failVectors = map[string]string{
	"fail_htpasswd_apr1":         "auth: invalid users: htpasswd line 2: user \"carol\": stored hash is apr1-MD5 (htpasswd -m), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 carol PASSWORD` or auth.HashPassword",
	"fail_htpasswd_sha1":         "auth: invalid users: htpasswd line 2: user \"carol\": stored hash is {SHA} SHA-1 (htpasswd -s), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 carol PASSWORD` or auth.HashPassword",
	"fail_htpasswd_descrypt":     "auth: invalid users: htpasswd line 2: user \"carol\": stored hash is DES crypt (htpasswd -d), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 carol PASSWORD` or auth.HashPassword",
	"fail_htpasswd_plaintext":    "auth: invalid users: htpasswd line 2: user \"carol\": stored hash is plaintext or unknown (htpasswd -p), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 carol PASSWORD` or auth.HashPassword",
	"fail_htpasswd_bcrypt_cost5": "auth: invalid users: user \"carol\" has bcrypt cost 5, below the minimum 10: re-hash with `htpasswd -nbBC 10 carol PASSWORD`", // refused by NewBasic
}

func loadVector(path string) (*Basic, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var password string
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "# password: "); ok {
			password = p
		}
	}
	users, err := ReadHtpasswd(strings.NewReader(string(data)))
	if err != nil {
		return nil, "", err
	}
	b, err := NewBasic(users)
	return b, password, err
}

func TestVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			switch {
			case strings.HasPrefix(name, "good_"):
				b, password, err := loadVector(path)
				if err != nil {
					t.Fatal(err)
				}
				for user := range b.users.Load().byName {
					if err := b.Verify(context.Background(), user, password); err != nil {
						t.Errorf("%s: %v", user, err)
					}
				}
			case strings.HasPrefix(name, "fail_"):
				want, ok := failVectors[name]
				if !ok {
					t.Fatalf("no expected error for %s", name)
				}
				_, _, err := loadVector(path)
				if !errors.Is(err, ErrInvalidUsers) || err.Error() != want {
					t.Fatalf("err = %v\nwant ErrInvalidUsers: %s", err, want)
				}
				if strings.Contains(err.Error(), "vector password") {
					t.Fatalf("error %q echoes the password", err)
				}
			case name == "fuzz":
			default:
				t.Fatalf("vector %s is neither good_* nor fail_*", name)
			}
		})
	}
}
