package auth

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lpsec/lpsec/internal/optiontest"
)

// Every option refuses the values that make no sense, with
// ErrInvalidOption and a message naming the option and the value's fault.
// (An option given to the wrong constructor cannot happen here: NewBasic
// takes Option and HashPassword takes HashOption, so it does not compile.)
func TestOptionMisuse(t *testing.T) {
	var msgs []string
	for name, tc := range map[string]struct {
		opts []Option
		want string
	}{
		"zero Option":            {[]Option{{}}, "auth: invalid option: zero Option given to NewBasic"},
		"realm with quote":       {[]Option{WithRealm(`a"b`)}, "auth: invalid option: WithRealm: realm must be printable ASCII without quotes or backslashes (byte 1 is not)"},
		"realm with backslash":   {[]Option{WithRealm(`a\b`)}, "auth: invalid option: WithRealm: realm must be printable ASCII without quotes or backslashes (byte 1 is not)"},
		"realm with newline":     {[]Option{WithRealm("ab\n")}, "auth: invalid option: WithRealm: realm must be printable ASCII without quotes or backslashes (byte 2 is not)"},
		"realm not ASCII":        {[]Option{WithRealm("é")}, "auth: invalid option: WithRealm: realm must be printable ASCII without quotes or backslashes (byte 0 is not)"},
		"empty realm":            {[]Option{WithRealm("")}, "auth: invalid option: WithRealm: realm must be 1 to 128 bytes, is 0"},
		"long realm":             {[]Option{WithRealm(strings.Repeat("r", 129))}, "auth: invalid option: WithRealm: realm must be 1 to 128 bytes, is 129"},
		"nil logger":             {[]Option{WithLogger(nil)}, "auth: invalid option: WithLogger: nil logger"},
		"nil clock":              {[]Option{WithClock(nil)}, "auth: invalid option: WithClock: nil clock"},
		"nil error writer":       {[]Option{WithErrorWriter(nil)}, "auth: invalid option: WithErrorWriter: nil ErrorWriter"},
		"min bcrypt cost 3":      {[]Option{WithMinimumCost(3, 64, 1)}, "auth: invalid option: WithMinimumCost: bcrypt cost 3 outside [4, 14]"},
		"min bcrypt cost 31":     {[]Option{WithMinimumCost(31, 64, 1)}, "auth: invalid option: WithMinimumCost: bcrypt cost 31 outside [4, 14]"},
		"min argon2id memory 0":  {[]Option{WithMinimumCost(10, 0, 1)}, "auth: invalid option: WithMinimumCost: argon2id m=0,t=1 outside m in [8, 262144], t in [1, 16]"},
		"min argon2id passes 0":  {[]Option{WithMinimumCost(10, 64, 0)}, "auth: invalid option: WithMinimumCost: argon2id m=64,t=0 outside m in [8, 262144], t in [1, 16]"},
		"min argon2id above max": {[]Option{WithMinimumCost(10, 1<<20, 1)}, "auth: invalid option: WithMinimumCost: argon2id m=1048576,t=1 outside m in [8, 262144], t in [1, 16]"},
		"zero hashes":            {[]Option{WithConcurrency(0, 1)}, "auth: invalid option: WithConcurrency: need hashes >= 1 and queue >= 0, have 0 and 1"},
		"negative queue":         {[]Option{WithConcurrency(1, -1)}, "auth: invalid option: WithConcurrency: need hashes >= 1 and queue >= 0, have 1 and -1"},
		"zero cache ttl":         {[]Option{WithCache(0, 1)}, "auth: invalid option: WithCache: need a positive ttl and size, have 0s and 1"},
		"negative cache ttl":     {[]Option{WithCache(-time.Second, 1)}, "auth: invalid option: WithCache: need a positive ttl and size, have -1s and 1"},
		"zero cache size":        {[]Option{WithCache(time.Minute, 0)}, "auth: invalid option: WithCache: need a positive ttl and size, have 1m0s and 0"},
		"cache and no cache":     {[]Option{WithCache(time.Minute, 1), WithoutCache()}, "auth: invalid option: WithCache and WithoutCache cannot be combined"},
		"zero burst":             {[]Option{WithThrottle(0, time.Second)}, "auth: invalid option: WithThrottle: need burst >= 1 and a positive interval, have 0 and 1s"},
		"zero interval":          {[]Option{WithThrottle(1, 0)}, "auth: invalid option: WithThrottle: need burst >= 1 and a positive interval, have 1 and 0s"},
		"negative interval":      {[]Option{WithThrottle(1, -time.Second)}, "auth: invalid option: WithThrottle: need burst >= 1 and a positive interval, have 1 and -1s"},
		"invalid proxy":          {[]Option{WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.Prefix{})}, "auth: invalid option: WithTrustedProxies: network 1 is not a valid prefix"},
		"good then bad":          {[]Option{WithLogger(slog.New(slog.DiscardHandler)), WithClock(nil)}, "auth: invalid option: WithClock: nil clock"},
	} {
		msgs = append(msgs, tc.want)
		t.Run(name, func(t *testing.T) {
			b, err := NewBasic(Users{}, tc.opts...)
			if b != nil || !errors.Is(err, ErrInvalidOption) || err.Error() != tc.want {
				t.Fatalf("NewBasic = %v, %v\nwant nil, %s", b, err, tc.want)
			}
		})
	}
	optiontest.RequireEveryOption(t, "Option", msgs)
}

// The defaults apply without options, and the options set what they say.
func TestOptionsApply(t *testing.T) {
	b, err := NewBasic(Users{})
	if err != nil {
		t.Fatal(err)
	}
	if b.realm != "lpsec" || b.cache == nil || b.cache.ttl != DefaultCacheTTL || b.cache.max != DefaultCacheSize ||
		b.limiter == nil || b.limiter.refuse || b.minBcrypt != DefaultMinBcryptCost ||
		b.minArgon2Work != DefaultMinArgon2idMemoryKiB*DefaultMinArgon2idPasses || b.gate.free < 1 || b.gate.limit != DefaultQueuePerHash*b.gate.free {
		t.Fatalf("defaults: %+v", b)
	}
	clock := func() time.Time { return time.Unix(1e9, 0) }
	b, err = NewBasic(Users{}, WithRealm("r"), WithClock(clock), WithMinimumCost(5, 64, 2), WithConcurrency(3, 0),
		WithoutCache(), WithThrottle(2, time.Second), WithTrustedProxies(netip.MustParsePrefix("10.1.2.3/8")))
	if err != nil {
		t.Fatal(err)
	}
	if b.realm != "r" || !b.now().Equal(clock()) || b.minBcrypt != 5 || b.minArgon2Work != 128 || b.gate.free != 3 || b.gate.limit != 0 ||
		b.cache != nil || !b.limiter.refuse || b.limiter.burst != 2 || len(b.proxies) != 1 || b.proxies[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Fatalf("options not applied: %+v", b)
	}
}
