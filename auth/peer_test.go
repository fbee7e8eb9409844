package auth

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/testenv"
)

func htpasswdLine(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "htpasswd", "apache2-utils")
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("htpasswd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// Hashes written by the real htpasswd at the documented cost verify, at
// production cost and with the default minimum.
func TestPeerHtpasswdBcrypt(t *testing.T) {
	line := htpasswdLine(t, "-nbBC", "10", "alice", testPassword)
	if !strings.HasPrefix(line, "alice:$2y$10$") {
		t.Fatalf("htpasswd wrote %q", line)
	}
	users, err := ReadHtpasswd(strings.NewReader("# from htpasswd\n" + line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBasic(users)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Verify(ctx, "alice", testPassword); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := b.Verify(ctx, "alice", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	// The same line in the comma form.
	if _, err := ParseUsers(line + ",bob:" + argonExample); err != nil {
		t.Fatalf("ParseUsers: %v", err)
	}
}

// `htpasswd -B` without -C writes cost 5: loads, but NewBasic refuses it.
func TestPeerHtpasswdDefaultBcryptCostRefused(t *testing.T) {
	line := htpasswdLine(t, "-nbB", "alice", "pw")
	users, err := ReadHtpasswd(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBasic(users); !errors.Is(err, ErrInvalidUsers) || !strings.Contains(err.Error(), "htpasswd -nbBC 10 alice") {
		t.Fatalf("err = %v, want ErrInvalidUsers saying how to re-hash", err)
	}
}

func TestPeerHtpasswdWeakFormatsRefused(t *testing.T) {
	for _, tc := range []struct{ flag, format string }{
		{"-m", "apr1-MD5"},
		{"-s", "{SHA}"},
		{"-d", "DES crypt"},
		{"-p", "plaintext"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			line := htpasswdLine(t, "-nb"+tc.flag[1:], "carol", "s3cret")
			_, err := ReadHtpasswd(strings.NewReader(line + "\n"))
			if !errors.Is(err, ErrInvalidUsers) {
				t.Fatalf("err = %v, want ErrInvalidUsers", err)
			}
			msg := err.Error()
			for _, want := range []string{`"carol"`, tc.format, "htpasswd -nbBC 10 carol"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q echoes the plaintext password", msg)
			}
		})
	}
}

// An argon2id string from the reference argon2 tool, with OWASP's
// parameters, verifies.
func TestPeerArgon2CLI(t *testing.T) {
	bin := testenv.LookPath(t, "argon2", "argon2")
	cmd := exec.Command(bin, "SALTSALTsaltsalt", "-id", "-t", "2", "-k", "19456", "-p", "1", "-l", "32", "-e")
	cmd.Stdin = strings.NewReader(testPassword)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("argon2: %v", err)
	}
	encoded := strings.TrimSpace(string(out))
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("argon2 wrote %q", encoded)
	}
	users, err := ParseUsers("alice:" + bcryptSample + ",bob:" + encoded)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBasic(users)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(context.Background(), "bob", testPassword); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := b.Verify(context.Background(), "bob", testPassword+"!"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	// Our parser re-encodes the tool's output byte for byte.
	c, err := parseArgon2id(encoded)
	if err != nil || encodeArgon2id(c) != encoded {
		t.Fatalf("round trip: %v, %q", err, encodeArgon2id(c))
	}
}
