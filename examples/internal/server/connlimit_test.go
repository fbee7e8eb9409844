package server

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/lpsec/lpsec/examples/internal/cli"
)

func TestConnLimitsFlags(t *testing.T) {
	for _, tc := range []struct {
		o        Options
		max, per int
		probes   string
		err      bool
	}{
		{Options{MaxConns: 100}, 100, 25, "", false},
		{Options{MaxConns: 3}, 3, 1, "", false},
		{Options{MaxConns: 10, MaxConnsPerAddr: 10, ProbeAddrs: cli.StringList{"10.0.0.7", "10.1.2.0/24", "::ffff:10.0.0.8", "fd00::1/64"}}, 10, 10,
			"[10.0.0.7/32 10.1.2.0/24 10.0.0.8/32 fd00::/64]", false},
		{Options{MaxConns: -1}, 0, 0, "", true},
		{Options{MaxConnsPerAddr: -1}, 0, 0, "", true},
		{Options{ProbeAddrs: cli.StringList{"10.0.0.300"}}, 0, 0, "", true},
		{Options{ProbeAddrs: cli.StringList{"host.example"}}, 0, 0, "", true},
		{Options{ProbeAddrs: cli.StringList{""}}, 0, 0, "", true},
	} {
		max, per, probes, err := connLimits(tc.o)
		var ue *cli.UsageError
		if tc.err {
			if !errors.As(err, &ue) {
				t.Errorf("%+v: error %v, want a usage error", tc.o, err)
			}
			continue
		}
		if err != nil || max != tc.max || per != tc.per || (tc.probes != "" && fmt.Sprint(probes) != tc.probes) {
			t.Errorf("%+v: %d %d %v %v", tc.o, max, per, probes, err)
		}
	}
	if n := autoMaxConns(); n < 16 || n > maxConnsCap {
		t.Errorf("autoMaxConns() = %d", n)
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:443":              "192.0.2.1",
		"[::ffff:192.0.2.1]:443":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::",
		"[2001:db8:1:2:ff::1]:9":     "2001:db8:1:2::",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := addrKey(a).String(); got != want {
			t.Errorf("addrKey(%s) = %s, want %s", in, got, want)
		}
	}
}
