package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/cli"
)

// adminAuth is HTTP Basic for the admin login endpoint only; everything
// else an admin does is authorised by the macaroon login returns.
type adminAuth struct {
	basic *auth.Basic // nil: no admin users configured
	users *adminUsers
	sso   *sso // nil: no OpenID provider configured
}

func newAdminAuth(o Options, log *slog.Logger) (*adminAuth, error) {
	var (
		users auth.Users
		err   error
		flag  = "--admin-users"
	)
	list := &adminUsers{log: log}
	switch {
	case o.AdminUsers != "":
		users, err = auth.ParseUsers(o.AdminUsers)
		list.names = userNames(o.AdminUsers, false)
	case o.AdminUsersFile != "":
		flag = "--admin-users-file"
		var st os.FileInfo
		users, list.names, st, err = readUsersFile(o.AdminUsersFile)
		if err == nil {
			list.file, list.size, list.mtime = o.AdminUsersFile, st.Size(), st.ModTime()
		}
	default:
		log.Warn("no admin users: every admin request will be refused", "event", "admin_disabled")
		return &adminAuth{users: list}, nil
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
	list.apply = b.SetUsers
	return &adminAuth{basic: b, users: list}, nil
}

func (a *adminAuth) wrap(next http.Handler) http.Handler {
	var basic http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "this server has no admin users")
	})
	if a.basic != nil {
		basic = a.basic.Middleware(next)
	}
	if a.sso == nil {
		return basic
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.sso.bearer(w, r, next) {
			basic.ServeHTTP(w, r)
		}
	})
}

func (a *adminAuth) user(ctx context.Context) string {
	if u, ok := ctx.Value(ssoUserKey{}).(string); ok {
		return u
	}
	u, _ := auth.UserFromContext(ctx)
	return u
}
