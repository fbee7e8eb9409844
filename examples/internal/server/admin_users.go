package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lpsec/lpsec/auth"
)

// adminUsers is the current set of admin user names. Every admin request
// asks it (through macaroon.WithCheckUser), so a user removed from
// --admin-users-file is refused at their next request, not when their
// macaroon expires. The file is re-read when its size or modification
// time changes (checked on every admin request: one stat) or on SIGHUP
// (Server.ReloadAdminUsers).
type adminUsers struct {
	file  string // "" with --admin-users: the list never changes
	log   *slog.Logger
	apply func(auth.Users) error // installs reloaded users for Basic login
	// removed is told of every user a reload removed; the server revokes
	// their logins, so re-adding the name later does not bring an old
	// (perhaps stolen) macaroon back to life.
	removed func(ctx context.Context, user string)
	// sso accepts the users OpenID Connect logins declare (ISSUER#SUBJECT
	// of the configured provider): the provider is their list. They are
	// not re-checked at the provider on each request; their macaroons end
	// with the TTL, a logout or a revocation.
	sso func(user string) bool

	mu    sync.Mutex
	names map[string]bool
	size  int64
	mtime time.Time
}

// errNotAdmin is what WithCheckUser's callback returns for a user no
// longer in the list; macaroon wraps it in ErrUserRefused.
var errNotAdmin = errors.New("not in the admin users list")

// userNames lists the names of an --admin-users spec or an htpasswd file's
// content, which auth has already validated.
func userNames(spec string, file bool) map[string]bool {
	names := map[string]bool{}
	sep := ","
	if file {
		sep = "\n"
	}
	for _, e := range strings.Split(spec, sep) {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		if name, _, ok := strings.Cut(e, ":"); ok {
			names[name] = true
		}
	}
	return names
}

// check is the WithCheckUser callback.
func (u *adminUsers) check(ctx context.Context, user string) error {
	u.refresh(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sso != nil && u.sso(user) {
		return nil
	}
	if !u.names[user] {
		return errNotAdmin
	}
	return nil
}

// refreshing re-reads a changed file before next runs (the login route:
// Basic must see an edit before it checks a password).
func (u *adminUsers) refreshing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.refresh(r.Context())
		next.ServeHTTP(w, r)
	})
}

// refresh re-reads the file if its size or modification time changed.
func (u *adminUsers) refresh(ctx context.Context) {
	if u.file != "" {
		if st, err := os.Stat(u.file); err == nil {
			u.mu.Lock()
			changed := st.Size() != u.size || !st.ModTime().Equal(u.mtime)
			u.mu.Unlock()
			if changed {
				_ = u.reload(ctx)
			}
		}
	}
}

// reload re-reads the file; on an error the current users stay (and are
// logged), so a half-written file never locks every admin out.
func (u *adminUsers) reload(ctx context.Context) error {
	if u.file == "" {
		return nil
	}
	users, names, st, err := readUsersFile(u.file)
	if err == nil && u.apply != nil {
		err = u.apply(users)
	}
	if err != nil {
		u.log.ErrorContext(ctx, "admin users not reloaded", "event", "admin_users_reload_failed", "error", err.Error())
		return fmt.Errorf("--admin-users-file: %w", err)
	}
	u.mu.Lock()
	var removed []string
	for n := range u.names {
		if !names[n] {
			removed = append(removed, n)
		}
	}
	u.names, u.size, u.mtime = names, st.Size(), st.ModTime()
	notify := u.removed
	u.mu.Unlock()
	if notify != nil {
		for _, n := range removed {
			notify(ctx, n)
		}
	}
	u.log.InfoContext(ctx, "admin users reloaded", "event", "admin_users_reloaded", "users", len(names), "removed", len(removed))
	return nil
}

func readUsersFile(path string) (auth.Users, map[string]bool, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return auth.Users{}, nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return auth.Users{}, nil, nil, err
	}
	const maxFile = 1 << 20
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if b.Len() > maxFile {
			return auth.Users{}, nil, nil, errors.New("file over 1 MiB")
		}
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return auth.Users{}, nil, nil, err
	}
	users, err := auth.ReadHtpasswd(strings.NewReader(b.String()))
	if err != nil {
		return auth.Users{}, nil, nil, err
	}
	return users, userNames(b.String(), true), st, nil
}
