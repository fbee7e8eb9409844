package macaroon

import (
	"time"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

// DefaultStoreTimeout bounds each call of a PostgreSQL store
// (WithStoreTimeout): long enough for any of their queries on a healthy
// database, short enough that a request needing a frozen or partitioned
// database fails with ErrUnavailable well before clients give up.
const DefaultStoreTimeout = 2 * time.Second

// WithStoreTimeout bounds how long each call of macaroonpg.RootKeyStore or
// macaroonpg.RevocationStore may take, waiting for a pooled connection
// included (default DefaultStoreTimeout). Past it the call's connection is
// closed, not just abandoned, so a frozen database costs the caller d and
// no more, and the call fails with an error wrapping ErrUnavailable. A
// shorter deadline on the caller's context still wins. PostgreSQL stores
// only (the memory stores never wait); d <= 0 is ErrInvalidOption.
func WithStoreTimeout(d time.Duration) Option {
	return core.NewOption("WithStoreTimeout", core.ForPostgresRootKeys|core.ForPostgresRevocations, func(s *core.Settings) error {
		s.StoreTimeout = d
		return positive(d)
	})
}
