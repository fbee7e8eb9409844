package client

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"livepatch-6.1.0-18.tar.gz":      "livepatch-6.1.0-18.tar.gz",
		"naïve ünïcode":                  "naïve ünïcode",
		"clear\x1b[2Jscreen":             `clear\x1b[2Jscreen`,
		"title\x1b]0;pwned\x07":          `title\x1b]0;pwned\x07`,
		"over\rwrite\n":                  `over\x0dwrite\x0a`,
		"c1\u009bcsi":                    `c1\x9bcsi`,
		"rlo\u202etxt.exe":               `rlo\u202etxt.exe`,
		"isolate\u2066x\u2069":           `isolate\u2066x\u2069`,
		"lrm\u200e zwsp\u200b bom\ufeff": `lrm\u200e zwsp\u200b bom\ufeff`,
		"bad\xffutf8":                    `bad\xffutf8`,
		"real \ufffd kept":               "real \ufffd kept",
		`back\slash`:                     `back\\slash`,
	} {
		if got := Safe(in); got != want {
			t.Errorf("Safe(%q) = %q, want %q", in, got, want)
		}
	}
	// The error type escapes what the server wrote.
	e := &ServerError{Status: 403, Code: "denied\x1b[31m", Message: "\u202eevil"}
	if got := e.Error(); strings.ContainsAny(got, "\x1b\u202e") {
		t.Errorf("ServerError.Error() = %q", got)
	}
}

func TestHint(t *testing.T) {
	err := fmt.Errorf("Get: %w", x509.UnknownAuthorityError{})
	if got := Hint(err); !errors.Is(got, err) || !strings.Contains(got.Error(), "--ca-certs") {
		t.Errorf("Hint = %v", got)
	}
	other := errors.New("connection refused")
	if got := Hint(other); got != other {
		t.Errorf("Hint(other) = %v", got)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		n, total int64
		elapsed  time.Duration
		want     string
	}{
		{10 << 20, 40 << 20, 2 * time.Second, "p: 10.0 MiB of 40.0 MiB at 5.0 MiB/s, ETA 6s   "},
		{512 << 10, -1, time.Second, "p: 512.0 KiB at 512.0 KiB/s   "},
		{40 << 20, 40 << 20, 4 * time.Second, "p: 40.0 MiB of 40.0 MiB at 10.0 MiB/s   "},
	} {
		if got := progressLine("p", tt.n, tt.total, tt.elapsed); got != tt.want {
			t.Errorf("progressLine(%d, %d, %v) = %q, want %q", tt.n, tt.total, tt.elapsed, got, tt.want)
		}
	}
}
