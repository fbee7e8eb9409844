package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/cli"
)

// adminAuth is HTTP Basic for the admin login endpoint only; everything
// else an admin does is authorised by the macaroon login returns.
type adminAuth struct {
	basic atomic.Pointer[auth.Basic] // nil: no admin users configured
}

func newAdminAuth(o Options, log *slog.Logger) (*adminAuth, error) {
	a := &adminAuth{}
	if err := a.reload(o, log); err != nil {
		return nil, err
	}
	return a, nil
}

// reload (re)reads the admin users; on an error the current ones stay.
func (a *adminAuth) reload(o Options, log *slog.Logger) error {
	b, err := loadAdmins(o, log)
	if err != nil {
		return err
	}
	a.basic.Store(b)
	return nil
}

func loadAdmins(o Options, log *slog.Logger) (*auth.Basic, error) {
	var (
		users auth.Users
		err   error
		flag  = "--admin-users"
	)
	switch {
	case o.AdminUsers != "":
		users, err = auth.ParseUsers(o.AdminUsers)
	case o.AdminUsersFile != "":
		flag = "--admin-users-file"
		var f *os.File
		if f, err = os.Open(o.AdminUsersFile); err == nil {
			users, err = auth.ReadHtpasswd(f)
			f.Close()
		}
	default:
		log.Warn("no admin users: every admin request will be refused", "event", "admin_disabled")
		return nil, nil
	}
	if err != nil {
		// auth's error names the user and the format, never the hash.
		return nil, &cli.UsageError{Msg: fmt.Sprintf("%s: %v", flag, err)}
	}
	b, err := auth.NewBasic(users,
		auth.WithLogger(log),
		auth.WithRealm("lpsec admin"),
		auth.WithCache(5*time.Minute, 1024),
		auth.WithThrottle(20, 2*time.Second),
	)
	if err != nil {
		return nil, &cli.UsageError{Msg: fmt.Sprintf("%s: %v", flag, err)}
	}
	return b, nil
}

// wrap asks the current users (SIGHUP may have replaced them).
func (a *adminAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := a.basic.Load()
		if b == nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "this server has no admin users")
			return
		}
		b.Middleware(next).ServeHTTP(w, r)
	})
}

func (a *adminAuth) user(ctx context.Context) string {
	u, _ := auth.UserFromContext(ctx)
	return u
}
