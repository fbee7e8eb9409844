package pgnotify

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// What the external tests need of the Follower's insides.

const HeartbeatPrefix = heartbeatPrefix

func SetAfterListen(f *Follower, fn func(*pgx.Conn)) { f.afterListen = fn }
func Renew(f *Follower)                              { f.renew() }

// Age moves f's clock forward by d.
func Age(f *Follower, d time.Duration) { f.base = f.base.Add(-d) }
