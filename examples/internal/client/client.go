// Package client is the example live-patch client behind examples/client
// and the demo. It registers the machine, lists, downloads and verifies
// patches (hash, then module signature against pinned certificates) and
// places verified modules in its state directory; it never loads anything
// into a kernel. It reports with a hashed machine ID.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/ident"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/patchverify"
	"github.com/lpsec/lpsec/report"
	"github.com/lpsec/lpsec/tlsconfig"
	"github.com/lpsec/lpsec/token"
)

// Version is sent in reports.
const Version = "lpsec-example-client/0.1"

// Config is the client's configuration.
type Config struct {
	RemoteServer     string
	CACerts          string
	HTTPProxy        string
	HTTPSProxy       string
	NoProxy          string
	TLSPatchDownload bool
	DialTimeout      time.Duration
	StateDir         string
	SigningCerts     []string
	MachineIDFile    string
	Kernel           string
	ReportKey        string
	ContractsURL     string
	Logger           *slog.Logger
	// Progress, when set, receives a progress line (bytes, rate, ETA) for
	// downloads that take longer than a second: give it a terminal only.
	Progress io.Writer
	// AllowRollback installs a patch whose version is not newer than the
	// applied one (an operator's override, logged as a security event).
	AllowRollback bool
	// RequireCatalogue makes refresh fetch the publisher's signed catalogue
	// from the server, refuse it when expired or older than the last one
	// seen, and install only a patch it lists.
	RequireCatalogue bool
}

// State is what the client keeps in --state-dir/state.json (0600).
type State struct {
	Server  string `json:"server"`
	CACerts string `json:"ca_certs,omitempty"` // --ca-certs given to enable, absolute

	Machine      string    `json:"machine"`
	Tier         string    `json:"tier"`
	MachineToken string    `json:"machine_token"`
	Registered   time.Time `json:"registered"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	// CatalogueVersion is the version of the last signed catalogue
	// accepted: an older one is refused.
	CatalogueVersion int64   `json:"catalogue_version,omitempty"`
	Patch            *Placed `json:"patch,omitempty"`
}

// Placed is a verified patch placed in the state directory.
type Placed struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Version  string `json:"version"`
	Kernel   string `json:"kernel"`
	Module   string `json:"module"` // path of the verified module
	Signer   string `json:"signer"`
	// Unchanged is set by Refresh when the offered patch is the one
	// already placed (same SHA-256): nothing was downloaded.
	Unchanged bool `json:"-"`
}

// ServerError is an error answer from the server.
type ServerError struct {
	Status  int
	Code    string
	Message string
}

// Error escapes what the server wrote, so that it cannot reach a terminal
// as escape sequences or reordered text.
func (e *ServerError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, Safe(e.Code))
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, Safe(e.Code), Safe(e.Message))
}

// ErrNotEnabled means the machine has not been registered yet.
var ErrNotEnabled = errors.New("client: machine not enabled (run: client enable TOKEN)")

// Client talks to one server.
type Client struct {
	cfg       Config
	server    *url.URL
	api       *http.Client // to the server: TLS always
	dl        *http.Client // patch downloads: TLS-only when TLSPatchDownload
	machineID [16]byte
	machine   string
	log       *slog.Logger
}

// New checks cfg and builds the HTTP clients.
func New(cfg Config) (*Client, error) {
	c := &Client{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("--state-dir must not be empty")
	}
	var err error
	c.machineID, err = report.ReadMachineID(cfg.MachineIDFile)
	if err != nil {
		return nil, fmt.Errorf("machine ID: %w", err)
	}
	if c.machine, err = ident.MachineName(c.machineID); err != nil {
		return nil, err
	}
	if cfg.RemoteServer != "" {
		u, err := url.Parse(strings.TrimRight(cfg.RemoteServer, "/"))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--remote-server: not a URL")
		}
		if err := tlsconfig.RequireTLS(u); err != nil {
			return nil, fmt.Errorf("--remote-server must be https: %w", err)
		}
		c.server = u
	}
	if cfg.CACerts == "" {
		// enable remembers --ca-certs; an unreadable state is reported by
		// the command that needs it.
		if st, err := c.LoadState(); err == nil && st.CACerts != "" {
			cfg.CACerts = st.CACerts
			c.cfg.CACerts = st.CACerts
		}
	} else if abs, err := filepath.Abs(cfg.CACerts); err == nil {
		c.cfg.CACerts = abs
	}
	srcs := []tlsconfig.PoolSource{tlsconfig.SystemRoots()}
	if cfg.CACerts != "" {
		srcs = append(srcs, tlsconfig.PEMFile(cfg.CACerts))
	}
	pool, err := tlsconfig.NewPool(srcs...)
	if err != nil {
		return nil, fmt.Errorf("--ca-certs: %w", err)
	}
	opts := []tlsconfig.Option{tlsconfig.WithRootCAs(pool), tlsconfig.WithLogger(c.log)}
	if cfg.HTTPProxy != "" || cfg.HTTPSProxy != "" || cfg.NoProxy != "" {
		opts = append(opts, tlsconfig.WithProxy(cfg.HTTPProxy, cfg.HTTPSProxy, cfg.NoProxy))
	}
	if cfg.DialTimeout > 0 {
		opts = append(opts, tlsconfig.WithDialTimeout(cfg.DialTimeout))
	}
	if c.api, err = tlsconfig.HTTPClient(append(opts, tlsconfig.WithRequireTLS())...); err != nil {
		return nil, err
	}
	dlOpts := opts
	if cfg.TLSPatchDownload {
		dlOpts = append(dlOpts, tlsconfig.WithRequireTLS())
	}
	if c.dl, err = tlsconfig.HTTPClient(dlOpts...); err != nil {
		return nil, err
	}
	return c, nil
}

// Machine is the machine's name on the network (app-specific ID).
func (c *Client) Machine() string { return c.machine }

func (c *Client) stateFile() string { return filepath.Join(c.cfg.StateDir, "state.json") }

// LoadState reads the saved state, or ErrNotEnabled.
func (c *Client) LoadState() (*State, error) {
	data, err := os.ReadFile(c.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnabled
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", c.stateFile(), err)
	}
	return &st, nil
}

func (c *Client) saveState(st *State) error {
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.stateFile() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.stateFile())
}

func (c *Client) serverURL(st *State) (*url.URL, error) {
	if c.server != nil {
		return c.server, nil
	}
	if st != nil && st.Server != "" {
		return url.Parse(st.Server)
	}
	return nil, errors.New("no --remote-server given")
}

// do sends a request to the server and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method string, base *url.URL, path string, hdr http.Header, body io.Reader, out any) error {
	u := base.JoinPath(path)
	return c.doURL(ctx, method, u.String(), hdr, body, out)
}

func (c *Client) doURL(ctx context.Context, method, u string, hdr http.Header, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("server answer: %w", err)
		}
	}
	return nil
}

func decodeError(status int, data []byte) error {
	var e api.Error
	_ = json.Unmarshal(data, &e)
	if e.Code == "" {
		e.Code = http.StatusText(status)
	}
	return &ServerError{Status: status, Code: e.Code, Message: e.Message}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// Enable registers the machine with a registration token.
func (c *Client) Enable(ctx context.Context, registrationToken string) (*State, error) {
	if c.server == nil {
		return nil, errors.New("enable needs --remote-server")
	}
	hdr, err := c.registerHeaders(bearer(registrationToken), "bearer:"+registrationToken)
	if err != nil {
		return nil, err
	}
	var resp api.RegisterResponse
	if err := c.register(ctx, hdr, &resp); err != nil {
		return nil, err
	}
	return c.enabled(resp)
}

// registerHeaders adds to a registration's credential the machine's current
// machine token, when this machine is already enabled on this server (so
// that re-enabling is a rotation, not a takeover the server refuses), and
// the registration's idempotency key, which makes it safe to repeat.
// credential names the credential (the server binds a retry to it); only
// its digest is stored.
func (c *Client) registerHeaders(hdr http.Header, credential string) (http.Header, error) {
	if st, err := c.LoadState(); err == nil && st.Server == c.server.String() && st.Machine == c.machine && st.MachineToken != "" {
		hdr.Set(api.HeaderCurrentToken, st.MachineToken)
	}
	key, err := c.pendingKey(credential)
	if err != nil {
		return nil, err
	}
	hdr.Set(api.HeaderIdempotencyKey, key)
	return hdr, nil
}

// pending is --state-dir/pending.json: the idempotency key of a
// registration sent but not yet answered. It is written before the first
// request, so that when the client process itself dies (or gives up while
// the server is down) after the server committed, the next enable with the
// same credential repeats that registration instead of spending another
// use of the token, or being refused because the name is now taken.
type pending struct {
	Server     string    `json:"server"`
	Machine    string    `json:"machine"`
	Credential string    `json:"credential_sha256"` // never the credential itself
	Key        string    `json:"idempotency_key"`
	Created    time.Time `json:"created"`
}

func (c *Client) pendingFile() string { return filepath.Join(c.cfg.StateDir, "pending.json") }

// pendingKey returns the key of the unanswered registration with the same
// server, machine and credential, still inside the server's retry window,
// or saves and returns a fresh one.
func (c *Client) pendingKey(credential string) (string, error) {
	sum := sha256.Sum256([]byte(credential))
	digest := hex.EncodeToString(sum[:])
	if data, err := os.ReadFile(c.pendingFile()); err == nil {
		var p pending
		if json.Unmarshal(data, &p) == nil && p.Key != "" && p.Server == c.server.String() && p.Machine == c.machine &&
			p.Credential == digest && time.Since(p.Created) < token.DefaultRetryWindow {
			c.log.Info("repeating an unanswered registration", "event", "register_resumed", "machine", c.machine)
			return p.Key, nil
		}
	}
	key, err := token.Generate()
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(pending{Server: c.server.String(), Machine: c.machine, Credential: digest, Key: key, Created: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(c.cfg.StateDir, c.pendingFile(), data); err != nil {
		return "", fmt.Errorf("saving the registration's idempotency key: %w", err)
	}
	return key, nil
}

// writeFileAtomic writes name (0600) through a synced temporary file and a
// rename, so that a crash leaves the old file or the new one.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// registerBackoff is the wait before each retry of a registration whose
// answer was lost.
var registerBackoff = []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second}

// register sends PUT /v1/client/{machine}, repeating it with the same
// idempotency key when the answer is lost (a transport error, or 502, 503,
// 504 from the server or a proxy) until ctx ends: the server returns a
// token for the registration it may already have committed, without
// taking another use. A final answer (success or refusal) ends the
// pending registration; a lost one leaves its key for the next enable.
func (c *Client) register(ctx context.Context, hdr http.Header, out *api.RegisterResponse) error {
	for i := 0; ; i++ {
		err := c.do(ctx, http.MethodPut, c.server, "/v1/client/"+c.machine, hdr, nil, out)
		var se *ServerError
		lost := err != nil && (!errors.As(err, &se) || se.Status == http.StatusBadGateway ||
			se.Status == http.StatusServiceUnavailable || se.Status == http.StatusGatewayTimeout)
		if err != nil && !lost {
			_ = os.Remove(c.pendingFile())
		}
		if !lost || ctx.Err() != nil || i == len(registerBackoff) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(registerBackoff[i]):
		}
	}
}

func (c *Client) enabled(resp api.RegisterResponse) (*State, error) {
	st := &State{Server: c.server.String(), CACerts: c.cfg.CACerts, Machine: resp.Machine, Tier: resp.Tier, MachineToken: resp.MachineToken, Registered: time.Now().UTC()}
	if err := c.saveState(st); err != nil {
		return nil, err
	}
	// The token is saved: the registration is no longer pending.
	_ = os.Remove(c.pendingFile())
	return st, nil
}

// CheckToken asks the server whether the saved machine token is accepted.
func (c *Client) CheckToken(ctx context.Context) error {
	_, err := c.List(ctx)
	return err
}

// Kernel is the kernel release patches are asked for.
func (c *Client) Kernel(ctx context.Context) (string, error) {
	if c.cfg.Kernel != "" {
		return c.cfg.Kernel, nil
	}
	r, err := report.Collect(ctx)
	if err != nil {
		return "", err
	}
	if r.KernelVersion == "" {
		return "", errors.New("cannot read the kernel release; give --kernel")
	}
	return r.KernelVersion, nil
}

// List returns the patches the server offers this machine's kernel.
func (c *Client) List(ctx context.Context) ([]api.Patch, error) {
	st, err := c.LoadState()
	if err != nil {
		return nil, err
	}
	base, err := c.serverURL(st)
	if err != nil {
		return nil, err
	}
	k, err := c.Kernel(ctx)
	if err != nil {
		return nil, err
	}
	u := base.JoinPath("/v1/client/" + st.Machine + "/patches")
	u.RawQuery = url.Values{"kernel": {k}}.Encode()
	var list api.PatchList
	if err := c.doURL(ctx, http.MethodGet, u.String(), bearer(st.MachineToken), nil, &list); err != nil {
		return nil, err
	}
	return list.Patches, nil
}

func (c *Client) verifier() (*patchverify.Verifier, error) {
	if len(c.cfg.SigningCerts) == 0 {
		return nil, errors.New("--signing-cert is required: the certificate patches must be signed by")
	}
	var pinned []*x509.Certificate
	for _, f := range c.cfg.SigningCerts {
		cs, err := pki.ReadCerts(f)
		if err != nil {
			return nil, fmt.Errorf("--signing-cert: %w", err)
		}
		pinned = append(pinned, cs...)
	}
	return patchverify.NewVerifier(pinned, patchverify.WithLogger(c.log))
}

// Refresh lists the patches for this kernel, downloads the newest, checks
// its hash and module signature, and places the verified module in the
// state directory. It returns nil, nil when there is nothing to apply.
func (c *Client) Refresh(ctx context.Context) (*Placed, error) {
	v, err := c.verifier()
	if err != nil {
		return nil, err
	}
	st, err := c.LoadState()
	if err != nil {
		return nil, err
	}
	list, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	st.LastCheck = time.Now().UTC()
	var cat *patchverify.Catalogue
	if c.cfg.RequireCatalogue {
		if cat, err = c.catalogue(ctx, v, st); err != nil {
			return nil, err
		}
		st.CatalogueVersion = cat.Version
	}
	if len(list) == 0 {
		return nil, c.saveState(st)
	}
	best := list[0]
	for _, p := range list[1:] {
		if versionLess(best.Version, p.Version) {
			best = p
		}
	}
	if cat != nil {
		if _, ok := cat.Lookup(best.SHA256); !ok {
			return nil, fmt.Errorf("%s: %w: %s is not in catalogue version %d", Safe(best.Filename), patchverify.ErrNotInCatalogue, best.SHA256, cat.Version)
		}
	}
	if st.Patch != nil && strings.EqualFold(st.Patch.SHA256, best.SHA256) {
		// Already placed: nothing to download. The placed module is checked
		// again against today's pinned certificates, which may have changed.
		if mod, err := readBounded(st.Patch.Module, patchverify.DefaultMaxFileSize); err == nil {
			if _, err := v.VerifyModule(mod); err != nil {
				return nil, fmt.Errorf("placed module %s: %w", st.Patch.Module, err)
			}
			c.log.Info("patch already placed", "event", "patch_unchanged", "sha256", st.Patch.SHA256)
			p := *st.Patch
			p.Unchanged = true
			return &p, c.saveState(st)
		}
	}
	placed, err := c.install(ctx, v, best, cat)
	if err != nil {
		return nil, err
	}
	st.Patch = placed
	return placed, c.saveState(st)
}

func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Install downloads one listed patch and verifies it: the URL must be
// https under --tls-patch-download (refused before any connection), the
// SHA-256 must match, the module signature must verify against the pinned
// certificates, the metadata must agree with the signed module, the module
// must say livepatch=Y, the patch must be for this kernel and newer than
// the applied one
// (state-dir/applied.json). Only then is anything written, and the applied
// state is recorded last.
func (c *Client) Install(ctx context.Context, v *patchverify.Verifier, p api.Patch) (*Placed, error) {
	return c.install(ctx, v, p, nil)
}

func (c *Client) install(ctx context.Context, v *patchverify.Verifier, p api.Patch, cat *patchverify.Catalogue) (*Placed, error) {
	name := Safe(p.Filename)
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("patch URL: %w", err)
	}
	kernel, err := c.Kernel(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	applied, err := patchverify.OpenFileState(filepath.Join(c.cfg.StateDir, "applied.json"))
	if err != nil {
		return nil, err
	}
	var dlOpts []patchverify.Option
	if c.cfg.TLSPatchDownload {
		if err := tlsconfig.RequireTLS(u); err != nil {
			return nil, fmt.Errorf("refusing patch download (--tls-patch-download): %w", err)
		}
		dlOpts = append(dlOpts, patchverify.WithRequireHTTPS())
	}
	dl := c.dl
	if c.cfg.Progress != nil {
		dl = withProgress(dl, c.cfg.Progress, name)
	}
	f, err := patchverify.Download(ctx, dl, u.String(), p.SHA256, dlOpts...)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", name, err)
	}
	defer f.Close()
	// A live-patch client installs live patches only (livepatch=Y).
	opts := []patchverify.Option{patchverify.WithRequireLivepatch(), patchverify.WithKernelRelease(kernel), patchverify.WithAppliedState(applied)}
	if c.cfg.AllowRollback {
		opts = append(opts, patchverify.WithAllowRollback())
	}
	if cat != nil {
		opts = append(opts, patchverify.WithCatalogue(cat))
	}
	patch, err := patchverify.VerifyPatch(ctx, f, p.SHA256, v, opts...)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", name, err)
	}
	// Named by the verified hash, so a new version never mixes with an old one.
	dir := filepath.Join(c.cfg.StateDir, "patches", patch.SHA256[:16])
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := patch.Extract(dir); err != nil {
		return nil, err
	}
	if err := patch.RecordApplied(ctx); err != nil {
		return nil, err
	}
	signer := patch.Signer.Signature.SignerName()
	if cn := patch.Signer.Certificate.Subject.CommonName; cn != "" {
		signer = cn
	}
	c.log.Info("patch verified and placed", "event", "patch_placed", "filename", p.Filename, "sha256", p.SHA256)
	return &Placed{Filename: p.Filename, SHA256: patch.SHA256, Version: strconv.Itoa(patch.Metadata.Version), Kernel: patch.Info.Release(),
		Module: filepath.Join(dir, patch.ModuleName), Signer: signer}, nil
}

// Report sends a machine report: the machine's app-specific ID (never the
// machine ID) only as an HMAC under the deployment's report key.
func (c *Client) Report(ctx context.Context) (*report.Report, error) {
	if c.cfg.ReportKey == "" {
		return nil, errors.New("--report-key is required to report (the deployment's key, ID:HEX)")
	}
	h, err := ident.ParseReportKeys(c.cfg.ReportKey)
	if err != nil {
		return nil, fmt.Errorf("--report-key: %w", err)
	}
	st, err := c.LoadState()
	if err != nil {
		return nil, err
	}
	base, err := c.serverURL(st)
	if err != nil {
		return nil, err
	}
	r, err := report.Collect(ctx)
	if err != nil {
		return nil, err
	}
	if c.cfg.Kernel != "" {
		r.KernelVersion = c.cfg.Kernel
	}
	// The app-specific ID the machine registered under, hashed: the server
	// checks it against the machine token (report.Hasher.VerifyOwner).
	app, err := ident.AppSpecific(c.machineID)
	if err != nil {
		return nil, err
	}
	r.MachineID = h.Hash(app)
	r.ClientVersion = Version
	r.LastCheck = st.LastCheck
	// The client verifies and places patches but never loads them.
	r.PatchState = report.PatchNothingToApply
	if st.Patch != nil {
		r.PatchState = report.PatchUnapplied
		r.PatchVersion = st.Patch.Version
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodPost, base, "/v1/client/"+st.Machine+"/report", bearer(st.MachineToken), bytes.NewReader(body), nil); err != nil {
		return nil, err
	}
	return &r, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// catalogue fetches the server's copy of the publisher's signed catalogue
// and verifies it: pinned signer, not expired, not older than the last one
// this client accepted.
func (c *Client) catalogue(ctx context.Context, v *patchverify.Verifier, st *State) (*patchverify.Catalogue, error) {
	base, err := c.serverURL(st)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("/v1/catalogue").String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, patchverify.MaxCatalogueSize+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("signed catalogue (--require-catalogue): %w", decodeError(resp.StatusCode, data))
	}
	var opts []patchverify.Option
	if st.CatalogueVersion > 0 {
		opts = append(opts, patchverify.WithMinCatalogueVersion(st.CatalogueVersion))
	}
	cat, err := patchverify.VerifyCatalogue(data, v, opts...)
	if err != nil {
		return nil, fmt.Errorf("signed catalogue: %w", err)
	}
	return cat, nil
}
