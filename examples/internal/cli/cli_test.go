package cli

import (
	"errors"
	"flag"
	"reflect"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	if got := EnvName("tls-cert"); got != "LPSEC_TLS_CERT" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestParseEnvironment(t *testing.T) {
	t.Setenv("LPSEC_LISTEN", "127.0.0.1:1")
	t.Setenv("LPSEC_TIMEOUT", "3s")
	t.Setenv("LPSEC_CERT", "a.pem, b.pem")
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

func TestParseBadEnvironmentIsUsageError(t *testing.T) {
	t.Setenv("LPSEC_TIMEOUT", "soon")
	fs := NewFlagSet("x", "", "")
	fs.Duration("timeout", time.Second, "")
	err := Parse(fs, nil)
	if ExitCode(err) != ExitUsage {
		t.Fatalf("err %v, exit %d", err, ExitCode(err))
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
