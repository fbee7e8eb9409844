// Command admin is the example admin tool for the lpsec server: it logs in
// with HTTP Basic (the password read from the terminal without echo, or
// from a file) or by single sign-on through the OAuth 2.0 device
// authorization grant (RFC 8628) at an OpenID provider, keeps the login
// macaroon in a file only its owner can read (0600), and runs the admin
// operations of the server with it.
//
//	go run ./examples/admin login --server https://127.0.0.1:8443 --ca-certs ca.pem --user alice
//	go run ./examples/admin login --server ... --sso --oidc-issuer https://idp.example --oidc-client-id lpsec-admin-cli
//	go run ./examples/admin tokens create --name fleet --uses 10
//	go run ./examples/admin tokens list
//	go run ./examples/admin machines
//	go run ./examples/admin patches upload livepatch-...tar.bz2
//	go run ./examples/admin reports
//	go run ./examples/admin logout
//
// Flags have LPSEC_ADMIN_* equivalents (--server is LPSEC_ADMIN_SERVER). Exit codes:
// 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/term"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/devicelogin"
)

func main() {
	cli.Main("admin", func(ctx context.Context, args []string) error {
		return cli.Dispatch(ctx, "admin", "admin: the lpsec example admin tool", []cli.Subcommand{
			{Name: "login", Summary: "log in (Basic, or --sso: OpenID Connect device flow) and keep the macaroon in --session-file", Run: login},
			{Name: "logout", Summary: "end the kept macaroon at the server and remove --session-file", Run: logout},
			{Name: "tokens", Summary: "registration (or --sync) tokens: create --name N [--uses N] [--valid-for D] | list | revoke ID", Run: tokens},
			{Name: "machines", Summary: "list machines (or: machines revoke ID)", Run: machines},
			{Name: "patches", Summary: "list patches (or: patches upload FILE)", Run: patches},
			{Name: "reports", Summary: "the last report of each machine", Run: reports},
			{Name: "sync", Summary: "pull patches from the server's upstream now", Run: syncNow},
		}, args)
	})
}

// DefaultTimeout bounds a whole command (a device login waits for the
// user, so it has its own, longer, bound).
const DefaultTimeout = 2 * time.Minute

type common struct {
	server, caCerts, session string
	timeout                  time.Duration
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "https `URL` of the lpsec server (saved by login)")
	fs.StringVar(&c.caCerts, "ca-certs", "", "extra CA certificates `file` (PEM) for the server (saved by login)")
	fs.StringVar(&c.session, "session-file", defaultSession(), "`file` keeping the login macaroon (mode 0600)")
	fs.DurationVar(&c.timeout, "timeout", DefaultTimeout, "overall `deadline` of the command")
}

func defaultSession() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "lpsec-admin", "session.json")
	}
	return "lpsec-admin-session.json"
}

// session is what the session file keeps.
type session struct {
	Server        string    `json:"server"`
	CACerts       string    `json:"ca_certs,omitempty"`
	User          string    `json:"user"`
	Expires       time.Time `json:"expires"`
	Authorization string    `json:"authorization"`
}

func (c *common) load() (*session, error) {
	f, err := os.Open(c.session)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("not logged in (no %s): run admin login", c.session)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// A session file others can read is a leaked credential: refuse it
	// rather than use it, as ssh does with private keys.
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): remove it and log in again", c.session, st.Mode().Perm())
	}
	var s session
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %v", c.session, err)
	}
	if c.server == "" {
		c.server = s.Server
	}
	if c.caCerts == "" {
		c.caCerts = s.CACerts
	}
	return &s, nil
}

// save writes the session through a temporary file created 0600 and
// renamed, so the macaroon is never in a file with wider permissions.
func (c *common) save(s *session) error {
	if err := os.MkdirAll(filepath.Dir(c.session), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(c.session), ".session-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := json.NewEncoder(f).Encode(s); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), c.session)
}

func (c *common) admin() (*client.Admin, error) {
	if c.server == "" {
		return nil, cli.Usagef("--server is required (or log in first)")
	}
	if !strings.HasPrefix(c.server, "https://") {
		return nil, cli.Usagef("--server must be an https URL")
	}
	return client.NewAdmin(c.server, c.caCerts)
}

// authed runs f with an Admin holding the kept macaroon.
func (c *common) authed(ctx context.Context, f func(context.Context, *client.Admin) error) error {
	s, err := c.load()
	if err != nil {
		return err
	}
	a, err := c.admin()
	if err != nil {
		return err
	}
	a.Authorization = s.Authorization
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return f(ctx, a)
}

func login(ctx context.Context, args []string) error {
	var (
		c                                common
		user, passwordFile               string
		sso                              bool
		issuer, clientID, secret, oidcCA string
		deviceTimeout                    time.Duration
	)
	fs := cli.NewFlagSet("admin login", "[flags]", `Log in and keep the login macaroon in --session-file (0600).

With --user: HTTP Basic, the password read from --password-file or, on a terminal, typed
without echo. With --sso: the OAuth 2.0 device authorization grant at --oidc-issuer; the
tool prints a URL and a code to enter there, waits for the approval, and exchanges the ID
token for the server's macaroon.`)
	c.flags(fs)
	fs.StringVar(&user, "user", "", "admin `name` for Basic login")
	fs.StringVar(&passwordFile, "password-file", "", "`file` holding the password (first line); default: ask on the terminal")
	fs.BoolVar(&sso, "sso", false, "log in through the OpenID provider (device flow) instead of Basic")
	fs.StringVar(&issuer, "oidc-issuer", "", "https `URL` of the OpenID provider (the server's --oidc-issuer)")
	fs.StringVar(&clientID, "oidc-client-id", "", "this tool's `client ID` at the provider (the server's --oidc-client-id)")
	fs.StringVar(&secret, "oidc-client-secret", "", "client `secret`, if the provider gave the device client one (prefer the environment variable)")
	fs.StringVar(&oidcCA, "oidc-ca-certs", "", "extra CA certificates `file` (PEM) for the provider")
	fs.DurationVar(&deviceTimeout, "device-timeout", 10*time.Minute, "how long to wait for the approval at the provider")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if sso == (user != "") {
		return cli.Usagef("give --user (Basic) or --sso, one of them")
	}
	a, err := c.admin()
	if err != nil {
		return err
	}
	var lr *api.LoginResponse
	if sso {
		if issuer == "" || clientID == "" {
			return cli.Usagef("--sso needs --oidc-issuer and --oidc-client-id")
		}
		dctx, cancel := context.WithTimeout(ctx, deviceTimeout)
		defer cancel()
		idToken, err := deviceLogin(dctx, issuer, clientID, secret, oidcCA)
		if err != nil {
			return err
		}
		if lr, err = a.LoginBearer(dctx, idToken); err != nil {
			return fmt.Errorf("server login with the ID token: %w", err)
		}
	} else {
		pw, err := password(user, passwordFile)
		if err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		if lr, err = a.Login(lctx, user, pw); err != nil {
			return fmt.Errorf("login: %w", err)
		}
	}
	if err := c.save(&session{Server: c.server, CACerts: c.caCerts, User: lr.User, Expires: lr.Expires, Authorization: lr.Header}); err != nil {
		return fmt.Errorf("--session-file: %w", err)
	}
	fmt.Printf("logged in as %s until %s (macaroon in %s)\n", lr.User, lr.Expires.Format(time.RFC3339), c.session)
	return nil
}

func password(user, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(pw, "\r"), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", cli.Usagef("no terminal to ask the password on: give --password-file")
	}
	fmt.Fprintf(os.Stderr, "password for %s: ", user)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// deviceLogin runs the device authorization grant and returns the ID
// token, printing where to approve it.
func deviceLogin(ctx context.Context, issuer, clientID, secret, caFile string) (string, error) {
	if !strings.HasPrefix(issuer, "https://") {
		return "", cli.Usagef("--oidc-issuer must be an https URL")
	}
	return devicelogin.IDToken(ctx, issuer, clientID, secret, caFile, func(_ context.Context, da *oauth2.DeviceAuthResponse) error {
		// The URL and code are the provider's words: printed escaped (%q).
		if da.VerificationURIComplete != "" {
			fmt.Fprintf(os.Stderr, "Open %q (or %q and enter the code %q) to approve this login.\n", da.VerificationURIComplete, da.VerificationURI, da.UserCode)
		} else {
			fmt.Fprintf(os.Stderr, "Open %q and enter the code %q to approve this login.\n", da.VerificationURI, da.UserCode)
		}
		return nil
	})
}

func logout(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("admin logout", "[flags]", "End the kept macaroon at the server (POST /v1/admin/logout) and remove --session-file.")
	c.flags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	err := c.authed(ctx, func(ctx context.Context, a *client.Admin) error {
		return a.Do(ctx, http.MethodPost, "/v1/admin/logout", nil, nil, nil)
	})
	if err != nil {
		return err
	}
	return os.Remove(c.session)
}

func tokens(ctx context.Context, args []string) error {
	var (
		c        common
		sync     bool
		name     string
		uses     int
		validFor string
	)
	fs := cli.NewFlagSet("admin tokens", "[flags] create|list|revoke [ID]", "Registration tokens (sync tokens with --sync).")
	c.flags(fs)
	fs.BoolVar(&sync, "sync", false, "sync tokens instead of registration tokens")
	fs.StringVar(&name, "name", "", "`name` of a new token (create)")
	fs.IntVar(&uses, "uses", 0, "registrations a new token allows (create; -1 unlimited)")
	fs.StringVar(&validFor, "valid-for", "", "lifetime of a new token, as 24h (create; default: no expiry)")
	rest, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	kind := "auth-tokens"
	if sync {
		kind = "sync-tokens"
	}
	if len(rest) == 0 {
		return cli.Usagef("tokens needs create, list or revoke")
	}
	return c.authed(ctx, func(ctx context.Context, a *client.Admin) error {
		switch {
		case rest[0] == "create" && len(rest) == 1:
			if name == "" {
				return cli.Usagef("tokens create needs --name")
			}
			t, err := a.IssueToken(ctx, kind, api.IssueTokenRequest{Name: name, Uses: uses, ValidFor: validFor})
			return show(t, err)
		case rest[0] == "list" && len(rest) == 1:
			return show(a.ListTokens(ctx, kind))
		case rest[0] == "revoke" && len(rest) == 2:
			return a.Revoke(ctx, kind, rest[1])
		}
		return cli.Usagef("tokens: create, list or revoke ID")
	})
}

func machines(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("admin machines", "[flags] [revoke ID]", "List machines, or revoke one's machine token.")
	c.flags(fs)
	rest, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	return c.authed(ctx, func(ctx context.Context, a *client.Admin) error {
		switch {
		case len(rest) == 0:
			return show(a.ListTokens(ctx, "machines"))
		case len(rest) == 2 && rest[0] == "revoke":
			return a.Revoke(ctx, "machines", rest[1])
		}
		return cli.Usagef("machines [revoke ID]")
	})
}

func patches(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("admin patches", "[flags] [upload FILE]", "List patches, or upload a tarball (the server verifies it as clients do).")
	c.flags(fs)
	rest, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	return c.authed(ctx, func(ctx context.Context, a *client.Admin) error {
		switch {
		case len(rest) == 0:
			var out json.RawMessage
			err := a.Do(ctx, http.MethodGet, "/v1/admin/patches", nil, nil, &out)
			return show(out, err)
		case len(rest) == 2 && rest[0] == "upload":
			b, err := os.ReadFile(rest[1])
			if err != nil {
				return err
			}
			return show(a.Upload(ctx, b))
		}
		return cli.Usagef("patches [upload FILE]")
	})
}

func reports(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("admin reports", "[flags]", "The last report of each machine.")
	c.flags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	return c.authed(ctx, func(ctx context.Context, a *client.Admin) error { return show(a.Reports(ctx)) })
}

func syncNow(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("admin sync", "[flags]", "Pull patches from the server's upstream now.")
	c.flags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	return c.authed(ctx, func(ctx context.Context, a *client.Admin) error { return show(a.Sync(ctx)) })
}

// show prints v as indented JSON: server-supplied strings come out
// quoted, with control characters escaped.
func show[T any](v T, err error) error {
	if err != nil {
		return client.Hint(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
