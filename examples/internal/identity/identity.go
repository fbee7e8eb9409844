// Package identity is the example identity service: a stand-in for an
// organisation's single sign-on (Canonical's Candid / Ubuntu SSO work this
// way with the bakery). It discharges the identity caveats of admin login
// macaroons the server mints at POST /v1/admin/login/identity, declaring
// the admin it authenticated, using macaroon.NewIdentityDischarger for
// everything macaroon. Authentication is a per-admin bearer secret, enough
// for an example; a real identity service would run its own login.
package identity

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/bakerykey"
	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/dischargesvc"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Options are the service's settings.
type Options struct {
	Listen          string
	StateDir        string
	TLSCert, TLSKey string
	Users           string
	UsersFile       string
	KeyFile         string
	DischargeTTL    time.Duration
	LogLevel        string
}

// RegisterFlags binds o to fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8445", "`address` to listen on")
	fs.StringVar(&o.StateDir, "state-dir", "lpsec-identity-state", "`directory` for the key pair and the generated TLS certificate")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "certificate chain `file` (PEM); without it a CA and certificate are made in --state-dir")
	fs.StringVar(&o.TLSKey, "tls-key", "", "private key `file` (PEM)")
	fs.StringVar(&o.Users, "users", "", "admins as `user=secret,...` (secret: 16 to 256 characters; prefer the environment variable or the file)")
	fs.StringVar(&o.UsersFile, "users-file", "", "`file` of admins, one user=secret per line (# comments)")
	fs.StringVar(&o.KeyFile, "key-file", "", "bakery key pair `file` (JSON); created when missing (default --state-dir/identity-key.json)")
	fs.DurationVar(&o.DischargeTTL, "discharge-ttl", 10*time.Minute, "lifetime of identity discharges (a login's session lasts as long as its discharge)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "`level` of the JSON log: debug, info, warn or error")
}

// Service is a running identity service.
type Service struct {
	// URL, CAFile and PublicKey (base64, to pin in the server's --identity-public-key)
	// come from the embedded server.
	*dischargesvc.Server
}

const maxUsers = 10000

type user struct {
	name string
	sum  [32]byte
}

func readUsers(o Options) ([]user, error) {
	var raw []string
	if o.Users != "" {
		raw = append(raw, strings.Split(o.Users, ",")...)
	}
	if o.UsersFile != "" {
		f, err := os.Open(o.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("--users-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				raw = append(raw, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--users-file: %w", err)
		}
	}
	var out []user
	for _, e := range raw {
		name, secret, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok || name == "" || len(name) > 256 || strings.ContainsAny(name, " \t\r\n") {
			return nil, cli.Usagef("users must be user=secret with a user name of 1 to 256 characters, no spaces")
		}
		if len(secret) < 16 || len(secret) > 256 {
			return nil, cli.Usagef("user %q: secrets must be 16 to 256 characters", name)
		}
		out = append(out, user{name: name, sum: sha256.Sum256([]byte(secret))})
	}
	if len(out) == 0 {
		return nil, cli.Usagef("no users: give --users or --users-file")
	}
	if len(out) > maxUsers {
		return nil, cli.Usagef("more than %d users", maxUsers)
	}
	return out, nil
}

// identify authenticates "Authorization: Bearer <secret>" against every
// user, in time independent of which one (if any) matches.
func identify(users []user, log *slog.Logger) lpmac.IdentifyFunc {
	return func(ctx context.Context, r *http.Request) (lpmac.Identity, error) {
		if r == nil {
			return lpmac.Identity{}, errors.New("no request")
		}
		vals := r.Header.Values("Authorization")
		if len(vals) != 1 || len(vals[0]) > 300 {
			return lpmac.Identity{}, errors.New("no bearer secret")
		}
		scheme, secret, ok := strings.Cut(vals[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return lpmac.Identity{}, errors.New("no bearer secret")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
		match := -1
		for i := range users {
			match = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(sum[:], users[i].sum[:]), i, match)
		}
		if match < 0 {
			log.InfoContext(ctx, "identity refused", "event", "identity_refused", "reason", "unknown_secret")
			return lpmac.Identity{}, errors.New("unknown bearer secret")
		}
		log.InfoContext(ctx, "identity declared", "event", "identity_declared", "user", users[match].name)
		return lpmac.Identity{User: users[match].name}, nil
	}
}

// Start runs the service until Close.
func Start(ctx context.Context, o Options, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	users, err := readUsers(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	keyFile := o.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(o.StateDir, "identity-key.json")
	}
	key, err := bakerykey.LoadOrCreate(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	dopts := []lpmac.Option{lpmac.WithLogger(log)}
	if o.DischargeTTL != 0 { // zero: the package default
		dopts = append(dopts, lpmac.WithDischargeTTL(o.DischargeTTL))
	}
	d, err := lpmac.NewIdentityDischarger(key, identify(users, log), dopts...)
	if err != nil {
		if errors.Is(err, lpmac.ErrInvalidOption) {
			return nil, cli.Usagef("--discharge-ttl: %v", err)
		}
		return nil, err
	}
	srv, err := dischargesvc.Start(dischargesvc.Listen{Addr: o.Listen, StateDir: o.StateDir, TLSCert: o.TLSCert, TLSKey: o.TLSKey}, d, d.PublicKey().String(), log)
	if err != nil {
		return nil, err
	}
	s := &Service{srv}
	log.Info("identity service started", "event", "identity_started", "url", s.URL, "users", len(users))
	return s, nil
}
