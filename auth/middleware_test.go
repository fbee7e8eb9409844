package auth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func serve(b *Basic, r *http.Request) *httptest.ResponseRecorder {
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFromContext(r.Context())
		if !ok {
			http.Error(w, "no user in context", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "hello "+u)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func request(auth ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/macaroon", nil)
	r.RemoteAddr = "192.0.2.10:51234"
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

func TestMiddleware(t *testing.T) {
	hashes(t)
	var logs logBuffer
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithRealm("livepatch admin"), WithLogger(newLogger(&logs)))

	rec := serve(b, request(basicHeader("alice:"+testPassword)))
	if rec.Code != http.StatusOK || rec.Body.String() != "hello alice" {
		t.Fatalf("good credentials: %d %q", rec.Code, rec.Body)
	}

	const challenge = `Basic realm="livepatch admin", charset="UTF-8"`
	var bodies []string
	for name, tc := range map[string]struct {
		auth   []string
		reason string
	}{
		"no header":     {nil, ""},
		"wrong":         {[]string{basicHeader("alice:wrong")}, "bad_password"},
		"unknown":       {[]string{basicHeader("mallory:" + testPassword)}, "user_not_found"},
		"two headers":   {[]string{basicHeader("alice:" + testPassword), basicHeader("alice:" + testPassword)}, "malformed_header"},
		"bad base64":    {[]string{"Basic %%%"}, "malformed_header"},
		"other scheme":  {[]string{"Bearer x"}, ""},
		"control chars": {[]string{basicHeader("alice:\x1b[31m")}, "malformed_header"},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(logs.records(t))
			rec := serve(b, request(tc.auth...))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, challenge)
			}
			bodies = append(bodies, rec.Body.String())
			recs := logs.records(t)[before:]
			if tc.reason == "" {
				if len(recs) != 0 {
					t.Fatalf("logged %v for a plain challenge", recs)
				}
				return
			}
			if len(recs) != 1 || recs[0]["event"] != "basicauth_authn_failed" || recs[0]["reason"] != tc.reason {
				t.Fatalf("log = %v, want one basicauth_authn_failed reason %s", recs, tc.reason)
			}
			if recs[0]["client"] != "192.0.2.10" {
				t.Errorf("log client = %v", recs[0]["client"])
			}
		})
	}
	for _, body := range bodies {
		if body != bodies[0] {
			t.Errorf("401 bodies differ: %q vs %q: the body must never say why", body, bodies[0])
		}
	}

	recs := logs.records(t)
	if recs[0]["event"] != "basicauth_authn_success" || recs[0]["user"] != "alice" {
		t.Errorf("success record = %v", recs[0])
	}
	all := logs.String()
	for _, secret := range []string{testPassword, "wrong", "mallory", "\x1b"} {
		if strings.Contains(all, secret) {
			t.Errorf("log contains %q (a password or an unknown name):\n%s", secret, all)
		}
	}
}

func TestMiddlewareThrottle(t *testing.T) {
	hashes(t)
	var logs logBuffer
	b, clk, w := newTestBasic(t, "alice:"+bcrypt4, WithThrottle(2, 30*time.Second), WithLogger(newLogger(&logs)),
		WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	viaProxy := func(client, user string) *http.Request {
		r := request(basicHeader(user + ":wrong"))
		r.RemoteAddr = "10.0.0.1:443"
		r.Header.Set("X-Forwarded-For", client)
		return r
	}
	// One client address tries many user names, each twice at most:
	// throttled by address after 4 × burst.
	for i := range 8 {
		if rec := serve(b, viaProxy("203.0.113.5", fmt.Sprint("u", i/2))); rec.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, rec.Code)
		}
	}
	w.take()
	rec := serve(b, viaProxy("203.0.113.5", "c"))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("ninth attempt from one address: %d Retry-After %q, want 429 30", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := rec.Body.String(); got != `{"code":"throttled","error":"too many failed attempts; retry later"}`+"\n" {
		t.Fatalf("429 body %q", got)
	}
	if got := w.take(); len(got) != 0 {
		t.Fatalf("throttled request computed %v", got)
	}
	recs := logs.records(t)
	if last := recs[len(recs)-1]; last["event"] != "auth_throttled" || last["reason"] != "throttled" || last["limit"] != "client" {
		t.Fatalf("last record %v, want event auth_throttled, reason throttled, limit client", last)
	}
	// Another client behind the same proxy is not affected.
	if rec := serve(b, viaProxy("203.0.113.6", "d")); rec.Code != http.StatusUnauthorized {
		t.Fatalf("other client: %d", rec.Code)
	}
	// X-Forwarded-For from a peer that is not a trusted proxy is ignored:
	// rotating it does not escape the limit.
	for i, fake := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		r := request(basicHeader("alice:wrong"))
		r.RemoteAddr = "192.0.2.99:1"
		r.Header.Set("X-Forwarded-For", fake)
		rec := serve(b, r)
		if i < 2 && rec.Code != http.StatusUnauthorized || i == 2 && rec.Code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d with forged X-Forwarded-For: %d", i, rec.Code)
		}
	}
	recs = logs.records(t)
	if last := recs[len(recs)-1]; last["event"] != "auth_throttled" || last["reason"] != "throttled" || last["limit"] != "user_client" || last["user"] != "alice" {
		t.Fatalf("last record %v, want event auth_throttled, reason throttled, limit user_client", last)
	}
	clk.advance(30 * time.Second)
	r := request(basicHeader("alice:" + testPassword))
	r.RemoteAddr = "192.0.2.99:1"
	if rec := serve(b, r); rec.Code != http.StatusOK {
		t.Fatalf("after the interval: %d", rec.Code)
	}
}

func TestMiddlewareOverloaded(t *testing.T) {
	hashes(t)
	var logs logBuffer
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithConcurrency(1, 0), WithoutCache(), WithLogger(newLogger(&logs)))
	entered, release := make(chan struct{}), make(chan struct{})
	b.onHash = func(string) { entered <- struct{}{}; <-release }
	done := make(chan int)
	go func() { done <- serve(b, request(basicHeader("alice:"+testPassword))).Code }()
	<-entered
	rec := serve(b, request(basicHeader("alice:"+testPassword)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("overloaded: %d Retry-After %q, want 503 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := rec.Body.String(); got != `{"code":"overloaded","error":"too many logins in progress; retry later"}`+"\n" {
		t.Fatalf("503 body %q", got)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	found := false
	for _, r := range logs.records(t) {
		found = found || (r["event"] == "auth_throttled" && r["reason"] == "overloaded")
	}
	if !found {
		t.Fatalf("no auth_throttled overloaded event in %s", logs.String())
	}
}

// TestMiddlewareErrorBody: the refusal is the JSON body shared by every
// lpsec middleware, never naming the credentials; WithErrorWriter replaces
// the body but not the challenge.
func TestMiddlewareErrorBody(t *testing.T) {
	hashes(t)
	b, _, _ := newTestBasic(t, "alice:"+bcrypt4)
	rec := serve(b, request(basicHeader("alice:wrong-secret")))
	if rec.Code != 401 || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Body.String() != `{"code":"unauthorized","error":"authentication required"}`+"\n" {
		t.Fatalf("401: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got []string
	b2, _, _ := newTestBasic(t, "alice:"+bcrypt4, WithErrorWriter(func(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
		got = append(got, code)
		w.WriteHeader(status)
		io.WriteString(w, "custom")
	}))
	rec = serve(b2, request())
	if rec.Code != 401 || rec.Body.String() != "custom" || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic realm=") || len(got) != 1 || got[0] != "unauthorized" {
		t.Fatalf("custom writer: %d %q %q %v", rec.Code, rec.Body, rec.Header().Get("WWW-Authenticate"), got)
	}
}
