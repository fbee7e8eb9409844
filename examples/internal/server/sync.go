package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/tlsconfig"
)

// TrustPool builds a pool of the system roots plus the CA certificates in
// caFile (if any).
func TrustPool(caFile string) (*tlsconfig.Pool, error) {
	srcs := []tlsconfig.PoolSource{tlsconfig.SystemRoots()}
	if caFile != "" {
		srcs = append(srcs, tlsconfig.PEMFile(caFile))
	}
	return tlsconfig.NewPool(srcs...)
}

// origin is scheme://host[:port] of an https URL, the unit a sync may
// fetch from.
func origin(u *url.URL) string {
	host := strings.ToLower(u.Host)
	host = strings.TrimSuffix(host, ":443")
	return "https://" + host
}

// parseOrigins reads --upstream-url and --sync-allow-origin into the set
// of origins a sync may contact.
func parseOrigins(o Options) (map[string]bool, error) {
	u, err := url.Parse(o.UpstreamURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, cli.Usagef("--upstream-url must be an https URL without user info, got %q", o.UpstreamURL)
	}
	allowed := map[string]bool{origin(u): true}
	for _, a := range o.SyncAllowOrigins {
		v, err := url.Parse(a)
		if err != nil || v.Scheme != "https" || v.Host == "" || v.User != nil || (v.Path != "" && v.Path != "/") || v.RawQuery != "" {
			return nil, cli.Usagef("--sync-allow-origin: %q is not an origin; want https://HOST[:PORT]", a)
		}
		allowed[origin(v)] = true
	}
	return allowed, nil
}

func (s *Server) newUpstreamClient(o Options, log *slog.Logger) (*http.Client, error) {
	allowed, err := parseOrigins(o)
	if err != nil {
		return nil, err
	}
	s.syncOrigins = allowed
	pool, err := TrustPool(o.UpstreamCACerts)
	if err != nil {
		return nil, fmt.Errorf("--upstream-ca-certs: %w", err)
	}
	// Server to server is always TLS: every request and redirect.
	c, err := tlsconfig.HTTPClient(tlsconfig.WithRootCAs(pool), tlsconfig.WithRequireTLS(), tlsconfig.WithLogger(log))
	if err != nil {
		return nil, err
	}
	// A redirect is a new request: it too stays inside the allowed
	// origins, or an upstream could send this server anywhere.
	prev := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !allowed[origin(req.URL)] {
			return fmt.Errorf("%w: redirect to %s", errOutsideOrigin, origin(req.URL))
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if prev != nil {
			return prev(req, via)
		}
		return nil
	}
	return c, nil
}

var errOutsideOrigin = errors.New("outside the upstream's origin and --sync-allow-origin")

func (s *Server) syncLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SyncInterval)
	defer t.Stop()
	for {
		if _, err := s.SyncOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sync failed", "event", "sync_failed", "upstream", s.opts.UpstreamURL, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Bounds on one sync.
const (
	// maxListing bounds an upstream's patch listing.
	maxListing = 4 << 20
	// DefaultSyncMaxPatches is --sync-max-patches' default.
	DefaultSyncMaxPatches = 1000
	// DefaultSyncMaxBytes is --sync-max-bytes' default.
	DefaultSyncMaxBytes = 4 << 30
)

// SyncOnce pulls the upstream's patch list and fetches every patch not yet
// held, only from the upstream's origin (or --sync-allow-origin), at most
// --sync-max-patches patches and --sync-max-bytes bytes. Each one goes
// through the same verification as an upload (hash, tarball, module
// signature against --signing-cert) before it is served; an entry that
// fails is skipped and logged, and the others go on.
func (s *Server) SyncOnce(ctx context.Context) (api.SyncResponse, error) {
	var res api.SyncResponse
	if s.upstream == nil {
		return res, errors.New("no --upstream-url")
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.opts.UpstreamURL, "/")+"/v1/sync/patches", nil)
	if err != nil {
		return res, err
	}
	req.Header.Set("Authorization", "Bearer "+s.opts.UpstreamSyncToken)
	resp, err := s.upstream.Do(req)
	if err != nil {
		return res, fmt.Errorf("upstream listing: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("upstream listing: %s", resp.Status)
	}
	var list api.PatchList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxListing)).Decode(&list); err != nil {
		return res, fmt.Errorf("upstream listing: %w", err)
	}
	maxPatches, budget := s.opts.SyncMaxPatches, s.opts.SyncMaxBytes
	refuse := func(p api.Patch, reason string, err error) {
		res.Refused++
		attrs := []any{"event", "sync_patch_refused", "reason", reason, "upstream", s.opts.UpstreamURL}
		if ValidFilename(p.Filename) {
			attrs = append(attrs, "filename", p.Filename)
		}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		s.log.Warn("synced patch refused", attrs...)
	}
	attempts := 0
	for i, p := range list.Patches {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if attempts >= maxPatches || budget <= 0 {
			// One record for the rest, not one per entry: the listing is
			// the upstream's to make long.
			reason := "over_max_patches"
			if budget <= 0 {
				reason = "over_max_bytes"
			}
			s.log.Warn("sync bound reached; the rest waits for the next sync", "event", "sync_patch_refused",
				"reason", reason, "upstream", s.opts.UpstreamURL, "remaining", len(list.Patches)-i)
			res.Refused += len(list.Patches) - i
			break
		}
		if !ValidFilename(p.Filename) {
			refuse(p, "bad_filename", nil)
			continue
		}
		have, err := s.cat.Lookup(ctx, p.Filename)
		if err == nil && strings.EqualFold(have.SHA256, p.SHA256) {
			res.Known++
			continue
		}
		if err != nil && !errors.Is(err, ErrNoPatch) {
			s.storeError("catalogue", err)
			return res, err
		}
		u, err := url.Parse(p.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			refuse(p, "bad_url", nil)
			continue
		}
		if !s.syncOrigins[origin(u)] {
			// Never contacted: an upstream must not make this server
			// fetch arbitrary URLs.
			refuse(p, "outside_origin", nil)
			continue
		}
		attempts++
		n, err := s.fetch(ctx, p, u, budget)
		budget -= n
		if err != nil {
			reason := "refused"
			switch {
			case errors.Is(err, errSyncBudget):
				reason = "over_max_bytes"
			case errors.Is(err, errOutsideOrigin):
				reason = "outside_origin"
			}
			refuse(p, reason, err)
			continue
		}
		s.log.Info("patch synced", "event", "sync_patch_fetched", "filename", p.Filename, "sha256", p.SHA256)
		res.Fetched++
	}
	s.log.Info("sync done", "event", "sync_done", "upstream", s.opts.UpstreamURL,
		"fetched", res.Fetched, "known", res.Known, "refused", res.Refused)
	return res, s.syncCatalogue(ctx)
}

var errSyncBudget = errors.New("over --sync-max-bytes for this sync")

// fetch downloads one patch to a temporary file (at most --max-patch-size
// and what is left of the sync's byte budget), verifies and stores it. It
// returns the bytes read.
func (s *Server) fetch(ctx context.Context, p api.Patch, u *url.URL, budget int64) (int64, error) {
	if budget <= 0 {
		return 0, errSyncBudget
	}
	if err := tlsconfig.RequireTLS(u); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.upstream.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download: %s", resp.Status)
	}
	f, err := s.tempFile()
	if err != nil {
		return 0, err
	}
	defer removeTemp(f)
	limit := min(s.opts.MaxPatchSize, budget)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return n, err
	}
	if n > limit {
		if limit == budget && budget < s.opts.MaxPatchSize {
			return n, errSyncBudget
		}
		return n, fmt.Errorf("larger than --max-patch-size")
	}
	// The upstream's hash is checked first (VerifyPatch compares against
	// it); the signature is checked against this server's pins.
	sum := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(sum, p.SHA256) {
		return n, fmt.Errorf("SHA-256 is not the listing's")
	}
	_, err = s.verifyAndStore(ctx, p.Filename, sum, f)
	return n, err
}
