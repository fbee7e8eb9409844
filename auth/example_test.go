package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/lpsec/lpsec/auth"
)

// The users of a live-patch server, as `htpasswd -nbBC 10` writes them.
const adminUsers = "admin:$2y$10$BbSkXKBDqLFPFhX65fm7mexEJJuXZKWpJEZs62PoHKgteqWWbHhq2"

func ExampleBasic_Middleware() {
	users, err := auth.ParseUsers(adminUsers)
	if err != nil {
		log.Fatal(err)
	}
	// Log security events without timestamps, so the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	basic, err := auth.NewBasic(users,
		auth.WithRealm("livepatch admin"),
		auth.WithLogger(logger),
		auth.WithThrottle(10, time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	issue := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := auth.UserFromContext(r.Context())
		fmt.Fprintf(w, "macaroon for %s", user)
	})
	srv := httptest.NewServer(basic.Middleware(issue))
	defer srv.Close()

	for _, password := range []string{"correct horse battery staple", "guess"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/macaroon", nil)
		req.SetBasicAuth("admin", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			fmt.Println(c)
		}
	}
	// Output:
	// event=basicauth_authn_success user=admin client=127.0.0.1
	// 200 macaroon for admin
	// event=basicauth_authn_failed reason=bad_password user=admin client=127.0.0.1
	// 401 {"code":"unauthorized","error":"authentication required"}
	// Basic realm="livepatch admin", charset="UTF-8"
}

func ExampleBasic_Verify() {
	users, err := auth.ParseUsers(adminUsers)
	if err != nil {
		log.Fatal(err)
	}
	basic, err := auth.NewBasic(users)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	fmt.Println(basic.Verify(ctx, "admin", "correct horse battery staple"))
	err = basic.Verify(ctx, "nobody", "correct horse battery staple")
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials), err)
	// Output:
	// <nil>
	// true auth: invalid credentials
}

func ExampleHashPassword() {
	hash, err := auth.HashPassword("correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	// The hash goes into the users list; its salt is random.
	fmt.Println(hash[:31])
	users, err := auth.ParseUsers("admin:" + hash)
	if err != nil {
		log.Fatal(err)
	}
	basic, err := auth.NewBasic(users)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(basic.Verify(context.Background(), "admin", "correct horse battery staple"))
	// Output:
	// $argon2id$v=19$m=19456,t=2,p=1$
	// <nil>
}

func ExampleParseUsers() {
	_, err := auth.ParseUsers("carol:$apr1$z4mPVKYF$HUJrXNMZsaU.iWC9cFOEw.")
	fmt.Println(errors.Is(err, auth.ErrInvalidUsers))
	fmt.Println(err)
	// Output:
	// true
	// auth: invalid users: entry 1: user "carol": stored hash is apr1-MD5 (htpasswd -m), but only bcrypt and argon2id are accepted: re-hash with `htpasswd -nbBC 10 carol PASSWORD` or auth.HashPassword
}

func ExampleReadHtpasswd() {
	// A file written by `htpasswd -cBC 10 admin.htpasswd admin`.
	file := "# livepatch admins\n" + adminUsers + "\n"
	users, err := auth.ReadHtpasswd(strings.NewReader(file))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(users.Len(), "user")
	// Output: 1 user
}
