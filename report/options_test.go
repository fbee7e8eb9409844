package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/optiontest"
)

// Every option's misuse, and every option given where it does not apply,
// is refused with ErrInvalidOption and a message naming the option.
func TestOptionMisuse(t *testing.T) {
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	body := withField("", "")
	decode := func(opts ...Option) error { _, err := Decode(strings.NewReader(body), opts...); return err }
	validate := func(opts ...Option) error {
		r, err := Decode(strings.NewReader(body), atTestNow)
		if err != nil {
			t.Fatal(err)
		}
		return r.Validate(opts...)
	}
	hasher := func(opts ...Option) error { _, err := NewHasher(k1, opts...); return err }
	var msgs []string
	for _, tc := range []struct {
		name string
		call func(...Option) error
		opts []Option
		want string
	}{
		{"Decode_nil_clock", decode, []Option{WithClock(nil)}, "report: invalid option: WithClock: nil clock"},
		{"Decode_zero_option", decode, []Option{{}}, "report: invalid option: zero Option given to Decode"},
		{"Decode_previous_keys", decode, []Option{WithPreviousKeys(k2)}, "report: invalid option: WithPreviousKeys does not apply to Decode"},
		{"Validate_nil_clock", validate, []Option{WithClock(nil)}, "report: invalid option: WithClock: nil clock"},
		{"Validate_zero_option", validate, []Option{{}}, "report: invalid option: zero Option given to Report.Validate"},
		{"Validate_previous_keys", validate, []Option{WithPreviousKeys(k2)}, "report: invalid option: WithPreviousKeys does not apply to Report.Validate"},
		{"NewHasher_clock", hasher, []Option{WithClock(time.Now)}, "report: invalid option: WithClock does not apply to NewHasher"},
		{"NewHasher_zero_option", hasher, []Option{{}}, "report: invalid option: zero Option given to NewHasher"},
		{"NewHasher_zero_key", hasher, []Option{WithPreviousKeys(k2, Key{})}, "report: invalid option: WithPreviousKeys: key 1 is not made by NewKey"},
		{"NewHasher_duplicate_id", hasher, []Option{WithPreviousKeys(k2, testKey(t, "k2", 3))}, `report: invalid option: WithPreviousKeys: key ID "k2" given twice`},
	} {
		msgs = append(msgs, tc.want)
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(tc.opts...); !errors.Is(err, ErrInvalidOption) || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
	optiontest.RequireEveryOption(t, "Option", msgs)
}

// WithClock is the time reports are checked against; without it, time.Now.
func TestWithClockApplies(t *testing.T) {
	body := withField("last_check", `"2026-11-24T12:00:01Z"`) // testNow + 2 days
	if _, err := Decode(strings.NewReader(body), atTestNow); !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("at testNow: err = %v, want ErrInvalidReport", err)
	}
	later := WithClock(func() time.Time { return testNow.Add(48 * time.Hour) })
	if _, err := Decode(strings.NewReader(body), later); err != nil {
		t.Fatalf("two days later: %v", err)
	}
	r, err := Decode(strings.NewReader(body), later)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(atTestNow); !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("Validate at testNow: err = %v, want ErrInvalidReport", err)
	}
	// The real clock is past 2026-11-24 whenever this runs.
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate with time.Now: %v", err)
	}
}
