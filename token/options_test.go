package token

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/optiontest"
	"github.com/lpsec/lpsec/token/internal/core"
)

// TestOptionMisuse: every misuse of an option is refused by the constructor
// with ErrInvalidOption and an error naming the option, never ignored.
func TestOptionMisuse(t *testing.T) {
	store := mustMemory(t)
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"lifetime_to_middleware", func() error { _, err := NewMiddleware(store, WithMachineLifetime(time.Hour)); return err },
			"WithMachineLifetime does not apply to NewMiddleware"},
		{"clock_to_middleware", func() error { _, err := NewMiddleware(store, WithClock(time.Now)); return err },
			"WithClock does not apply to NewMiddleware"},
		{"nil_store", func() error { _, err := NewMiddleware(nil); return err }, "nil Store"},
		{"nil_logger_store", func() error { _, err := NewMemoryStore(WithLogger(nil)); return err }, "WithLogger: nil logger"},
		{"nil_logger_middleware", func() error { _, err := NewMiddleware(store, WithLogger(nil)); return err }, "WithLogger: nil logger"},
		{"nil_clock", func() error { _, err := NewMemoryStore(WithClock(nil)); return err }, "WithClock: nil clock"},
		{"zero_lifetime", func() error { _, err := NewMemoryStore(WithMachineLifetime(0)); return err }, "WithMachineLifetime: lifetime 0s is not positive"},
		{"negative_lifetime", func() error { _, err := NewMemoryStore(WithMachineLifetime(-time.Second)); return err }, "WithMachineLifetime: lifetime -1s is not positive"},
		{"zero_option", func() error { _, err := NewMemoryStore(Option{}); return err }, "zero Option given to NewMemoryStore"},
		{"zero_retry_window", func() error { _, err := NewMemoryStore(WithRetryWindow(0)); return err }, "WithRetryWindow: window 0s is not positive"},
		{"negative_retention", func() error { _, err := NewMemoryStore(WithMachineRetention(-time.Hour)); return err }, "WithMachineRetention: retention -1h0m0s is not positive"},
		{"auth_cache_to_memory", func() error { _, err := NewMemoryStore(WithAuthCache(time.Second, 10)); return err },
			"WithAuthCache does not apply to NewMemoryStore"},
		{"auth_cache_to_middleware", func() error { _, err := NewMiddleware(store, WithAuthCache(time.Second, 10)); return err },
			"WithAuthCache does not apply to NewMiddleware"},
		{"retry_window_to_middleware", func() error { _, err := NewMiddleware(store, WithRetryWindow(time.Minute)); return err },
			"WithRetryWindow does not apply to NewMiddleware"},
		{"retention_to_middleware", func() error { _, err := NewMiddleware(store, WithMachineRetention(time.Hour)); return err },
			"WithMachineRetention does not apply to NewMiddleware"},
		{"zero_register_option", func() error {
			reg, _ := mustIssueRegistration(t, store, Registration{Tier: "t", Name: "n", Uses: 1})
			_, _, err := store.Register(context.Background(), reg, "m", RegisterOption{})
			return err
		}, "zero RegisterOption"},
		{"nil_error_writer", func() error { _, err := NewMiddleware(store, WithErrorWriter(nil)); return err }, "WithErrorWriter: nil ErrorWriter"},
		{"store_timeout_to_memory", func() error { _, err := NewMemoryStore(WithStoreTimeout(time.Second)); return err },
			"WithStoreTimeout does not apply to NewMemoryStore"},
		{"store_timeout_to_middleware", func() error { _, err := NewMiddleware(store, WithStoreTimeout(time.Second)); return err },
			"WithStoreTimeout does not apply to NewMiddleware"},
		{"error_writer_to_store", func() error {
			_, err := NewMemoryStore(WithErrorWriter(func(http.ResponseWriter, *http.Request, int, string, string) {}))
			return err
		},
			"WithErrorWriter does not apply to NewMemoryStore"},
	}
	var msgs []string
	for _, tc := range cases {
		msgs = append(msgs, tc.want)
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("error %v, want ErrInvalidOption", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	// WithStoreTimeout's and WithAuthCache's own refusals (zero, negative,
	// too long) are tested with tokenpg, the store they apply to.
	optiontest.RequireEveryOption(t, "Option", msgs)
}

// TestRegisterOptionMisuse: a register option with a value that is not a
// token is refused before anything is looked up, naming the option.
func TestRegisterOptionMisuse(t *testing.T) {
	store := mustMemory(t)
	reg, _ := mustIssueRegistration(t, store, Registration{Tier: "t", Name: "n", Uses: 3})
	var msgs []string
	for _, tc := range []struct {
		name string
		opts []RegisterOption
		want string
	}{
		{"empty_current_token", []RegisterOption{WithCurrentToken("")}, "WithCurrentToken: token: malformed token: length 0, want 36"},
		{"short_current_token", []RegisterOption{WithCurrentToken("x")}, "WithCurrentToken: token: malformed token: length 1, want 36"},
		{"empty_retry_key", []RegisterOption{WithRetryKey("")}, "WithRetryKey: token: malformed token: length 0, want 36"},
		{"short_retry_key", []RegisterOption{WithRetryKey("short")}, "WithRetryKey: token: malformed token: length 5, want 36"},
	} {
		msgs = append(msgs, tc.want)
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := store.Register(context.Background(), reg, "m-"+tc.name, tc.opts...)
			if !errors.Is(err, ErrMalformed) || err.Error() != tc.want {
				t.Fatalf("error %v, want %q (ErrMalformed)", err, tc.want)
			}
		})
	}
	if l, _ := store.ListRegistrations(context.Background()); len(l) != 1 || l[0].UsesLeft != 3 {
		t.Fatalf("refused registrations took uses: %+v", l)
	}
	optiontest.RequireEveryOption(t, "RegisterOption", msgs)
}

// TestLimitsMatchCore: the documented limits are the ones enforced.
func TestLimitsMatchCore(t *testing.T) {
	if KeepReplaced != core.KeepReplaced || MaxListLimit != core.MaxListLimit ||
		DefaultRetryWindow != core.DefaultRetryWindow || DefaultMachineRetention != core.DefaultMachineRetention {
		t.Fatal("token's KeepReplaced, MaxListLimit or defaults differ from what core enforces")
	}
	if Unlimited != core.Unlimited || MaxUses != core.MaxUses || MaxFieldLen != core.MaxFieldLen {
		t.Fatalf("token limits %d %d %d, core enforces %d %d %d", Unlimited, MaxUses, MaxFieldLen, core.Unlimited, core.MaxUses, core.MaxFieldLen)
	}
}
