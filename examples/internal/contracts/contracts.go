// Package contracts is the example entitlement service: a stand-in for a
// vendor's contracts server. It knows contract tokens and discharges the
// third-party caveats of resource macaroons for requests that present a
// valid one, using macaroon.Discharger for everything macaroon.
package contracts

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
	"regexp"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/bakerykey"
	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/dischargesvc"
	lpmac "github.com/lpsec/lpsec/macaroon"
)

// Options are the service's settings.
type Options struct {
	Listen             string
	StateDir           string
	TLSCert, TLSKey    string
	ContractTokens     string
	ContractTokensFile string
	KeyFile            string
	DischargeTTL       time.Duration
	LogLevel           string
}

// RegisterFlags binds o to fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8444", "`address` to listen on")
	fs.StringVar(&o.StateDir, "state-dir", "lpsec-contracts-state", "`directory` for the key pair and the generated TLS certificate")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "certificate chain `file` (PEM); without it a CA and certificate are made in --state-dir")
	fs.StringVar(&o.TLSKey, "tls-key", "", "private key `file` (PEM)")
	fs.StringVar(&o.ContractTokens, "contract-tokens", "", "valid contract `tokens`, comma-separated (secret: prefer the environment variable or the file)")
	fs.StringVar(&o.ContractTokensFile, "contract-tokens-file", "", "`file` of valid contract tokens, one per line (# comments)")
	fs.StringVar(&o.KeyFile, "key-file", "", "bakery key pair `file` (JSON); created when missing (default --state-dir/contracts-key.json)")
	fs.DurationVar(&o.DischargeTTL, "discharge-ttl", 10*time.Minute, "lifetime of discharges")
	fs.StringVar(&o.LogLevel, "log-level", "info", "`level` of the JSON log: debug, info, warn or error")
}

// Service is a running entitlement service.
type Service struct {
	// URL, CAFile and PublicKey (base64, to pin in the server's --contracts-public-key)
	// come from the embedded server.
	*dischargesvc.Server
}

// maxTokens bounds the contract-token list.
const maxTokens = 100000

func readTokens(o Options) ([][32]byte, error) {
	var raw []string
	if o.ContractTokens != "" {
		raw = append(raw, strings.Split(o.ContractTokens, ",")...)
	}
	if o.ContractTokensFile != "" {
		f, err := os.Open(o.ContractTokensFile)
		if err != nil {
			return nil, fmt.Errorf("--contract-tokens-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				raw = append(raw, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--contract-tokens-file: %w", err)
		}
	}
	var out [][32]byte
	for _, t := range raw {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if len(t) < 16 || len(t) > 256 {
			return nil, cli.Usagef("contract tokens must be 16 to 256 characters")
		}
		out = append(out, sha256.Sum256([]byte(t)))
	}
	if len(out) == 0 {
		return nil, cli.Usagef("no contract tokens: give --contract-tokens or --contract-tokens-file")
	}
	if len(out) > maxTokens {
		return nil, cli.Usagef("more than %d contract tokens", maxTokens)
	}
	return out, nil
}

var conditionRe = regexp.MustCompile(`^entitled-machine [0-9a-f]{32}$`)

// Start runs the service until Close.
func Start(ctx context.Context, o Options, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tokens, err := readTokens(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	keyFile := o.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(o.StateDir, "contracts-key.json")
	}
	key, err := bakerykey.LoadOrCreate(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	check := func(ctx context.Context, r *http.Request, condition string) error {
		if !conditionRe.MatchString(condition) {
			return fmt.Errorf("unknown condition")
		}
		if r == nil {
			return errors.New("no request")
		}
		vals := r.Header.Values("Authorization")
		if len(vals) != 1 || len(vals[0]) > 300 {
			return errors.New("no contract token")
		}
		scheme, tok, ok := strings.Cut(vals[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return errors.New("no contract token")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		found := 0
		for i := range tokens {
			found |= subtle.ConstantTimeCompare(sum[:], tokens[i][:])
		}
		if found != 1 {
			log.Info("discharge refused", "event", "contract_refused", "reason", "unknown_contract_token")
			return errors.New("unknown contract token")
		}
		log.Info("discharge granted", "event", "contract_discharged", "condition", condition)
		return nil
	}
	dopts := []lpmac.Option{lpmac.WithLogger(log)}
	if o.DischargeTTL != 0 { // zero: the package default
		dopts = append(dopts, lpmac.WithDischargeTTL(o.DischargeTTL))
	}
	d, err := lpmac.NewDischarger(key, check, dopts...)
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
	log.Info("entitlement service started", "event", "contracts_started", "url", s.URL, "tokens", len(tokens))
	return s, nil
}
