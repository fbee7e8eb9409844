package token

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
}

func serve(h http.Handler, authorization ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/patches", nil)
	for _, a := range authorization {
		r.Header.Add("Authorization", a)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type fixture struct {
	store            *MemoryStore
	reg, mtok, stok  string
	revoked, exhaust string
	logs             *bytes.Buffer
	mw               *Middleware
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{logs: new(bytes.Buffer)}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.store = mustMemory(t, WithLogger(log))
	var err error
	if f.mw, err = NewMiddleware(f.store, WithLogger(log)); err != nil {
		t.Fatal(err)
	}
	f.reg, _, err = f.store.IssueRegistration(ctx, Registration{Tier: "stable", Name: "fleet", Uses: 10})
	if err != nil {
		t.Fatal(err)
	}
	f.mtok, _ = mustRegister(t, f.store, f.reg, "m1")
	f.revoked, _ = mustRegister(t, f.store, f.reg, "m2")
	if _, _, err := f.store.Register(ctx, f.reg, "m2", WithCurrentToken(f.revoked)); err != nil { // replaces f.revoked
		t.Fatal(err)
	}
	f.stok, _, err = f.store.IssueSync(ctx, Sync{Tier: "stable", Name: "mirror"})
	if err != nil {
		t.Fatal(err)
	}
	f.exhaust, _ = mustIssueRegistration(t, f.store, Registration{Tier: "t", Name: "one", Uses: 1})
	mustRegister(t, f.store, f.exhaust, "m3")
	f.logs.Reset()
	return f
}

func TestMiddlewarePassesRecordInContext(t *testing.T) {
	f := newFixture(t)
	var got Machine
	h := f.mw.Machine(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = MachineFromContext(r.Context())
		if _, ok := SyncFromContext(r.Context()); ok {
			t.Error("a sync record in a machine request")
		}
	}))
	if w := serve(h, "Bearer "+f.mtok); w.Code != 200 {
		t.Fatalf("code %d", w.Code)
	}
	if got.Machine != "m1" || got.Tier != "stable" {
		t.Fatalf("record %+v", got)
	}
	// The scheme name is case-insensitive (RFC 9110), the token too; one or
	// more spaces separate them, and whitespace around the value is ignored.
	for _, hdr := range []string{"bearer " + strings.ToUpper(f.mtok), "BEARER  " + f.mtok, " Bearer " + f.mtok + "\t"} {
		if w := serve(h, hdr); w.Code != 200 {
			t.Fatalf("%q: code %d", hdr, w.Code)
		}
	}

	var sy Sync
	h = f.mw.Sync(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sy, _ = SyncFromContext(r.Context())
	}))
	if w := serve(h, "Bearer "+f.stok); w.Code != 200 || sy.Name != "mirror" {
		t.Fatalf("sync: code %d record %+v", w.Code, sy)
	}

	var reg Registration
	h = f.mw.Registration(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg, _ = RegistrationFromContext(r.Context())
		tok, err := BearerToken(r)
		if err != nil {
			t.Error(err)
		}
		if _, _, err := f.store.Register(r.Context(), tok, "m9"); err != nil {
			t.Error(err)
		}
	}))
	if w := serve(h, "Bearer "+f.reg); w.Code != 200 || reg.Name != "fleet" {
		t.Fatalf("registration: code %d record %+v", w.Code, reg)
	}
	if strings.Contains(f.logs.String(), f.mtok) || strings.Contains(f.logs.String(), f.reg) {
		t.Fatal("a token in the logs")
	}
}

// TestMiddlewareRefusesHostileRequests: each request is refused with 401 and
// the right challenge, logs one token_authn_failed event with the reason, and
// no log line holds a token.
func TestMiddlewareRefusesHostileRequests(t *testing.T) {
	f := newFixture(t)
	unknown, _ := Generate()
	const invalid = `Bearer error="invalid_token"`
	tests := []struct {
		name      string
		kind      func(http.Handler) http.Handler
		headers   []string
		challenge string
		reason    string
	}{
		{"no_header", f.mw.Machine, nil, "Bearer", "missing"},
		{"basic_scheme", f.mw.Machine, []string{"Basic dXNlcjpwYXNz"}, "Bearer", "missing"},
		{"scheme_only", f.mw.Machine, []string{"Bearer"}, invalid, "malformed"},
		{"empty_token", f.mw.Machine, []string{"Bearer "}, invalid, "malformed"},
		{"tab_separator", f.mw.Machine, []string{"Bearer\t" + f.mtok}, invalid, "malformed"},
		{"crlf_after_token", f.mw.Machine, []string{"Bearer " + f.mtok + "\r\nX-Tier: beta"}, invalid, "malformed"},
		{"nul_after_token", f.mw.Machine, []string{"Bearer " + f.mtok + "\x00"}, invalid, "malformed"},
		{"second_token", f.mw.Machine, []string{"Bearer " + f.mtok + " " + f.stok}, invalid, "malformed"},
		{"two_headers_other_scheme", f.mw.Machine, []string{"Basic dXNlcjpwYXNz", "Bearer " + f.mtok}, invalid, "malformed"},
		{"two_authorization_headers", f.mw.Machine, []string{"Bearer " + f.mtok, "Bearer " + unknown}, invalid, "malformed"},
		{"oversized_header", f.mw.Machine, []string{"Bearer " + strings.Repeat("a", 1<<16)}, invalid, "malformed"},
		{"urn_token", f.mw.Machine, []string{"Bearer urn:uuid:" + f.mtok}, invalid, "malformed"},
		{"unknown_token", f.mw.Machine, []string{"Bearer " + unknown}, invalid, "unknown"},
		{"replaced_machine_token", f.mw.Machine, []string{"Bearer " + f.revoked}, invalid, "revoked"},
		{"sync_token_as_machine_token", f.mw.Machine, []string{"Bearer " + f.stok}, invalid, "unknown"},
		{"machine_token_as_sync_token", f.mw.Sync, []string{"Bearer " + f.mtok}, invalid, "unknown"},
		{"registration_token_as_machine_token", f.mw.Machine, []string{"Bearer " + f.reg}, invalid, "unknown"},
		{"machine_token_as_registration_token", f.mw.Registration, []string{"Bearer " + f.mtok}, invalid, "unknown"},
		{"exhausted_registration_token", f.mw.Registration, []string{"Bearer " + f.exhaust}, invalid, "exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.Reset()
			called := false
			h := tt.kind(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			w := serve(h, tt.headers...)
			if called || w.Code != http.StatusUnauthorized {
				t.Fatalf("code %d, handler called %v", w.Code, called)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			wantBody := `{"code":"invalid_token","error":"token not accepted"}` + "\n"
			if tt.challenge == "Bearer" {
				wantBody = `{"code":"unauthorized","error":"bearer token required"}` + "\n"
			}
			if w.Body.String() != wantBody || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("body %q (%s), want %q", w.Body, w.Header().Get("Content-Type"), wantBody)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, `"event":"token_authn_failed"`) || !strings.Contains(logs, `"reason":"`+tt.reason+`"`) {
				t.Fatalf("logs %s, want reason %s", logs, tt.reason)
			}
			for _, tok := range []string{f.mtok, f.stok, f.reg, f.revoked, unknown} {
				if strings.Contains(strings.ToLower(logs), tok) || strings.Contains(w.Body.String(), tok) {
					t.Fatal("a token in the logs or the response")
				}
			}
		})
	}
}

func TestBearerTokenErrors(t *testing.T) {
	tok, _ := Generate()
	for name, tt := range map[string]struct {
		headers []string
		want    error
	}{
		"none":      {nil, ErrNoBearer},
		"basic":     {[]string{"Basic x"}, ErrNoBearer},
		"two":       {[]string{"Bearer " + tok, "Bearer " + tok}, ErrMalformed},
		"oversized": {[]string{"Bearer " + tok + strings.Repeat(" ", MaxAuthorizationLen)}, ErrMalformed},
		"hex32":     {[]string{"Bearer " + strings.ReplaceAll(tok, "-", "")}, ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := BearerToken(r)
			if !errors.Is(err, tt.want) || got != "" {
				t.Fatalf("BearerToken = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// failingStore answers every call with ErrUnavailable, as a store whose
// database is down does.
type failingStore struct{ Store }

func (failingStore) AuthenticateMachine(context.Context, string) (Machine, error) {
	return Machine{}, ErrUnavailable
}

func TestMiddlewareStoreDownIs503(t *testing.T) {
	tok, _ := Generate()
	var logs bytes.Buffer
	mw, err := NewMiddleware(failingStore{}, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	w := serve(mw.Machine(okHandler()), "Bearer "+tok)
	if w.Code != http.StatusServiceUnavailable || w.Body.String() != `{"code":"unavailable","error":"token store unavailable"}`+"\n" {
		t.Fatalf("code %d body %q, want 503", w.Code, w.Body)
	}
	// A custom writer replaces the body, not the status.
	var codes []string
	mw, err = NewMiddleware(failingStore{}, WithErrorWriter(func(w http.ResponseWriter, _ *http.Request, status int, code, _ string) {
		codes = append(codes, code)
		w.WriteHeader(status)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if w := serve(mw.Machine(okHandler()), "Bearer "+tok); w.Code != 503 || w.Body.Len() != 0 || len(codes) != 1 || codes[0] != "unavailable" {
		t.Fatalf("custom writer: %d %q %v", w.Code, w.Body, codes)
	}
	if !strings.Contains(logs.String(), `"reason":"unavailable"`) {
		t.Fatalf("logs %s", logs.String())
	}
}

// FuzzBearerToken: whatever the header, the middleware never lets a request
// through unless the header holds the one live token, and never panics.
func FuzzBearerToken(f *testing.F) {
	s := mustMemory(f)
	reg, _, _ := s.IssueRegistration(context.Background(), Registration{Tier: "t", Name: "n", Uses: 1})
	tok, _, err := s.Register(context.Background(), reg, "m")
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewMiddleware(s)
	if err != nil {
		f.Fatal(err)
	}
	mw := m.Machine(okHandler())
	for _, seed := range []string{"Bearer " + tok, "bearer " + strings.ToUpper(tok), "Bearer", "Basic abc", "Bearer urn:uuid:" + tok, "", "Bearer " + reg, "Bearer  " + tok + " ", "Bearer\t" + tok} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		w := serve(mw, header)
		if w.Code == http.StatusNoContent {
			// Only the RFC 9110 framing around the one live token passes.
			scheme, rest, _ := strings.Cut(strings.Trim(header, " \t"), " ")
			if !strings.EqualFold(scheme, "Bearer") || !strings.EqualFold(strings.TrimLeft(rest, " "), tok) || len(header) > MaxAuthorizationLen {
				t.Fatalf("request let through with a header that is not the token")
			}
		} else if w.Code != http.StatusUnauthorized {
			t.Fatalf("code %d", w.Code)
		}
	})
}
