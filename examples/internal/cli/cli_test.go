package cli

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	for _, tc := range []struct{ prog, flag, want string }{
		{"server", "tls-cert", "LPSEC_SERVER_TLS_CERT"},
		{"client enable", "remote-server", "LPSEC_CLIENT_REMOTE_SERVER"},
		{"patchtool package", "kernel", "LPSEC_PATCHTOOL_KERNEL"},
	} {
		if got := EnvName(tc.prog, tc.flag); got != tc.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tc.prog, tc.flag, got, tc.want)
		}
	}
}

func TestParseEnvironment(t *testing.T) {
	t.Setenv("LPSEC_X_LISTEN", "127.0.0.1:1")
	t.Setenv("LPSEC_X_TIMEOUT", "3s")
	t.Setenv("LPSEC_X_CERT", "a.pem, b.pem")
	t.Setenv("LPSEC_LISTEN", "ignored: not this binary's namespace")
	t.Setenv("LPSEC_Y_LISTEN", "ignored: another binary's")
	fs := NewFlagSet("x", "", "")
	listen := fs.String("listen", "default", "")
	timeout := fs.Duration("timeout", time.Second, "")
	var certs StringList
	fs.Var(&certs, "cert", "")
	if err := Parse(fs, []string{"--timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:1" {
		t.Errorf("listen from the environment: %q", *listen)
	}
	if *timeout != 5*time.Second {
		t.Errorf("the command line must win over the environment: %v", *timeout)
	}
	if !reflect.DeepEqual([]string(certs), []string{"a.pem", "b.pem"}) {
		t.Errorf("list from the environment: %q", certs)
	}
}

// TestParseErrors: every refusal is a usage error that names the flag or
// variable, the value and the expected form.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env duration", map[string]string{"LPSEC_X_TIMEOUT": "soon"}, nil,
			`$LPSEC_X_TIMEOUT: invalid value "soon"; want a Go duration such as 30s, 5m or 240h`},
		{"duration without unit", nil, []string{"--timeout", "5"},
			`--timeout: invalid value "5"; want a Go duration such as 30s, 5m or 240h`},
		{"bad env bool", map[string]string{"LPSEC_X_FORCE": "yes"}, nil,
			`$LPSEC_X_FORCE: invalid value "yes"; want true or false`},
		{"bad int", nil, []string{"--max", "lots"}, `--max: invalid value "lots"; want a whole number`},
		{"misspelt variable", map[string]string{"LPSEC_X_ADMIN_USER": "alice"}, nil,
			`unknown environment variable $LPSEC_X_ADMIN_USER: did you mean $LPSEC_X_ADMIN_USERS?`},
		{"unrelated variable", map[string]string{"LPSEC_X_ZZZZZZZZZZZZZZZZZZZ": "1"}, nil,
			`unknown environment variable $LPSEC_X_ZZZZZZZZZZZZZZZZZZZ: x has no such setting`},
		{"secret twice", map[string]string{"LPSEC_X_TOKEN_FILE": "/nonexistent"}, []string{"--token", "hunter2"},
			`$LPSEC_X_TOKEN_FILE: invalid value "/nonexistent": give --token or --token-file, not both`},
		{"secret twice, value not echoed", map[string]string{"LPSEC_X_TOKEN": "hunter2"}, []string{"--token-file", "/dev/null"},
			`$LPSEC_X_TOKEN: invalid value: give --token-file or --token, not both`},
		{"secret file missing", nil, []string{"--token-file", "/nonexistent/t"}, `--token-file: invalid value "/nonexistent/t": reading the secret: open /nonexistent/t`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := NewFlagSet("x", "", "")
			fs.Duration("timeout", time.Second, "")
			fs.Bool("force", false, "")
			fs.Int("max", 1, "")
			fs.String("admin-users", "", "")
			var tok string
			Secret(fs, &tok, "token", "a token")
			err := Parse(fs, tc.args)
			if ExitCode(err) != ExitUsage {
				t.Fatalf("err %v, exit %d, want a usage error", err, ExitCode(err))
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n%q\nwant prefix\n%q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error echoes the secret: %q", err)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LPSEC_X_KEK_FILE", p)
	fs := NewFlagSet("x", "", "")
	var kek string
	Secret(fs, &kek, "kek", "")
	if err := Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if kek != "s3cret" {
		t.Errorf("kek from the file: %q", kek)
	}
}

// TestSubcommandSharesNamespace: a variable for another subcommand of the
// same binary is not an error; a near miss of this one's flags is.
func TestSubcommandSharesNamespace(t *testing.T) {
	t.Setenv("LPSEC_Y_KERNEL", "6.1.0-18-amd64") // a flag of "y refresh", not of "y status"
	fs := NewFlagSet("y status", "", "")
	fs.String("remote-server", "", "")
	if err := Parse(fs, nil); err != nil {
		t.Fatalf("another subcommand's variable: %v", err)
	}
	t.Setenv("LPSEC_Y_REMOTE_SERVR", "x")
	fs = NewFlagSet("y status", "", "")
	fs.String("remote-server", "", "")
	if err := Parse(fs, nil); err == nil || !strings.Contains(err.Error(), "$LPSEC_Y_REMOTE_SERVER") {
		t.Fatalf("near miss: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"USER", "USERS", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	fs := NewFlagSet("sign", "", "")
	key := fs.String("key", "", "")
	out := fs.String("o", "", "")
	pos, err := ParseInterleaved(fs, []string{"--key", "k.pem", "m.ko", "-o", "out.ko", "--", "-weird.ko"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if *key != "k.pem" || *out != "out.ko" || !reflect.DeepEqual(pos, []string{"m.ko", "-weird.ko"}) {
		t.Errorf("key %q out %q pos %q", *key, *out, pos)
	}
	fs2 := NewFlagSet("server", "", "")
	if _, err := ParseInterleaved(fs2, []string{"stray"}, false); ExitCode(err) != ExitUsage {
		t.Errorf("a stray argument must be a usage error, got %v", err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{Usagef("x"), 2},
		{&ExitError{Code: 1, Err: errors.New("invalid")}, 1},
		{errors.New("io"), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
