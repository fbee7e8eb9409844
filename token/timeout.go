package token

import (
	"fmt"
	"time"

	"github.com/lpsec/lpsec/token/internal/core"
)

// DefaultStoreTimeout bounds each call of a tokenpg.Store (WithStoreTimeout):
// long enough for any of its queries on a healthy database, short enough
// that a request needing a frozen or partitioned database is answered with
// ErrUnavailable (503 from the Middleware) well before clients give up.
const DefaultStoreTimeout = core.DefaultStoreTimeout

// WithStoreTimeout bounds how long each call of the store may take,
// waiting for a pooled connection included (default DefaultStoreTimeout).
// Past it the call's connection is closed, not just abandoned, so a frozen
// database costs the caller d and no more, and the call fails with
// ErrUnavailable. A shorter deadline on the caller's context still wins.
// tokenpg.NewStore only (MemoryStore never waits); d <= 0 is
// ErrInvalidOption.
func WithStoreTimeout(d time.Duration) Option {
	return core.NewOption("WithStoreTimeout", core.ForDatabase, func(s *core.Settings) error {
		if d <= 0 {
			return fmt.Errorf("timeout %v is not positive", d)
		}
		s.StoreTimeout = d
		return nil
	})
}
