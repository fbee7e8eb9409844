package client

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Safe returns s fit for a terminal: control characters (ESC, CR, BEL, C1),
// bidirectional-formatting characters (which reorder what is shown) and
// invalid UTF-8 are escaped as \x.., \u.... Everything the server supplies
// (names, versions, error messages) goes through it before it is printed.
func Safe(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\ufffd"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.Is(unicode.Bidi_Control, r) || r == 0x200b || r == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Hint adds to err what to do about it, where the client knows: a server
// certificate from an unknown authority needs --ca-certs.
func Hint(err error) error {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return fmt.Errorf("%w\nhint: the server's certificate is not signed by a CA this client trusts; give the CA certificate with --ca-certs FILE (enable remembers it)", err)
	}
	return err
}

// withProgress returns a copy of hc whose response bodies report progress
// to w once a download has taken a second, every half second after that.
func withProgress(hc *http.Client, w io.Writer, name string) *http.Client {
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		resp.Body = &progressBody{ReadCloser: resp.Body, w: w, name: name, total: resp.ContentLength, start: time.Now(), next: time.Now().Add(time.Second)}
		return resp, nil
	})
	return &c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type progressBody struct {
	io.ReadCloser
	w       io.Writer
	name    string
	total   int64
	n       int64
	start   time.Time
	next    time.Time
	mu      sync.Mutex
	printed bool
}

func (p *progressBody) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	if now := time.Now(); !now.Before(p.next) || (err == io.EOF && p.printed) {
		p.next = now.Add(500 * time.Millisecond)
		p.printed = true
		fmt.Fprintf(p.w, "\r%s", progressLine(p.name, p.n, p.total, now.Sub(p.start)))
		if err == io.EOF {
			fmt.Fprintln(p.w)
		}
	}
	return n, err
}

// progressLine renders bytes, rate and, when the size is known, ETA.
func progressLine(name string, n, total int64, elapsed time.Duration) string {
	rate := float64(n) / max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("%s: %s", name, size(n))
	if total > 0 {
		line += " of " + size(total)
	}
	line += " at " + size(int64(rate)) + "/s"
	if total > n && rate > 0 {
		line += ", ETA " + time.Duration(float64(total-n)/rate*float64(time.Second)).Round(time.Second).String()
	}
	return line + "   "
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
