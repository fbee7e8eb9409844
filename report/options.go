package report

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption reports an option that makes no sense (a nil clock, a
// key not made by NewKey or given twice) or that does not apply
// to the function it was given to. The error names the option, as in
// "report: invalid option: WithClock does not apply to NewHasher".
var ErrInvalidOption = errors.New("report: invalid option")

// scope says which functions accept an option.
type scope uint8

const (
	forDecode scope = 1 << iota // Decode and Report.Validate
	forHasher                   // NewHasher
)

// An Option configures Decode, Report.Validate or NewHasher. Each option's
// documentation says where it applies; giving it anywhere else is an error
// (ErrInvalidOption), not silently ignored.
//
// Collect takes no options, and the report's bounds (MaxReportSize,
// MaxFieldLen) are not options: they are part of the format, so that a
// report one server accepts every server accepts.
type Option struct {
	name  string
	scope scope
	apply func(*settings) error
}

type settings struct {
	now      func() time.Time
	previous []Key
}

// build returns the settings by value, and without options skips the
// loop (through which s escapes): a server calls Decode once per request
// with none, and should not pay an allocation for them.
func build(fn string, sc scope, opts []Option) (settings, error) {
	if len(opts) == 0 {
		return settings{now: time.Now}, nil
	}
	return buildOpts(fn, sc, opts)
}

func buildOpts(fn string, sc scope, opts []Option) (settings, error) {
	s := settings{now: time.Now}
	for _, o := range opts {
		if o.apply == nil {
			return settings{}, fmt.Errorf("%w: zero Option given to %s", ErrInvalidOption, fn)
		}
		if o.scope&sc == 0 {
			return settings{}, fmt.Errorf("%w: %s does not apply to %s", ErrInvalidOption, o.name, fn)
		}
		if err := o.apply(&s); err != nil {
			return settings{}, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	return s, nil
}

// WithClock replaces time.Now as the current time reports are checked
// against (a report's times may be at most a day ahead of it); tests and
// replays of stored reports use it. Applies to Decode and Report.Validate.
func WithClock(now func() time.Time) Option {
	return Option{"WithClock", forDecode, func(s *settings) error {
		if now == nil {
			return errors.New("nil clock")
		}
		s.now = now
		return nil
	}}
}

// WithPreviousKeys makes a Hasher recognise and verify hashes made under
// keys, besides its current key: the keys a deployment rotated away from,
// most recent first by convention. Every key must come from NewKey and no
// key ID may appear twice. No keys is the same as no option (so a list
// read from configuration can be passed as it is); repeating the option
// adds keys. Applies to NewHasher.
func WithPreviousKeys(keys ...Key) Option {
	return Option{"WithPreviousKeys", forHasher, func(s *settings) error {
		for i, k := range keys {
			if !k.valid() {
				return fmt.Errorf("key %d is not made by NewKey", i)
			}
		}
		s.previous = append(s.previous, keys...)
		return nil
	}}
}
