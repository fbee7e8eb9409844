package server

import (
	"context"
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

func newUpstreamClient(o Options, log *slog.Logger) (*http.Client, error) {
	u, err := url.Parse(o.UpstreamURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--upstream-url must be an https URL")
	}
	pool, err := TrustPool(o.UpstreamCACerts)
	if err != nil {
		return nil, fmt.Errorf("--upstream-ca-certs: %w", err)
	}
	// Server to server is always TLS: every request and redirect.
	c, err := tlsconfig.HTTPClient(tlsconfig.WithRootCAs(pool), tlsconfig.WithRequireTLS(), tlsconfig.WithLogger(log))
	if err != nil {
		return nil, err
	}
	return c, nil
}

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

// maxListing bounds an upstream's patch listing.
const maxListing = 4 << 20

// SyncOnce pulls the upstream's patch list and fetches every patch not yet
// held. Each one goes through the same verification as an upload (hash,
// tarball, module signature against --signing-cert) before it is served.
func (s *Server) SyncOnce(ctx context.Context) (api.SyncResponse, error) {
	var res api.SyncResponse
	if s.upstream == nil {
		return res, errors.New("no --upstream-url")
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
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
	have, err := s.cat.List(ctx)
	if err != nil {
		return res, err
	}
	known := map[string]string{}
	for _, p := range have {
		known[p.Filename] = p.SHA256
	}
	for _, p := range list.Patches {
		if !ValidFilename(p.Filename) {
			s.log.Warn("upstream sent an unsafe filename", "event", "sync_patch_refused", "reason", "bad_filename")
			continue
		}
		if strings.EqualFold(known[p.Filename], p.SHA256) {
			res.Known++
			continue
		}
		if err := s.fetch(ctx, p); err != nil {
			s.log.Warn("synced patch refused", "event", "sync_patch_refused", "filename", p.Filename, "reason", err.Error())
			return res, fmt.Errorf("%s: %w", p.Filename, err)
		}
		s.log.Info("patch synced", "event", "sync_patch_fetched", "filename", p.Filename, "sha256", p.SHA256)
		res.Fetched++
	}
	return res, s.syncCatalogue(ctx)
}

func (s *Server) fetch(ctx context.Context, p api.Patch) error {
	u, err := url.Parse(p.URL)
	if err != nil {
		return err
	}
	if err := tlsconfig.RequireTLS(u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := s.upstream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxPatchSize+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > s.opts.MaxPatchSize {
		return fmt.Errorf("larger than --max-patch-size")
	}
	// The upstream's hash is checked first (VerifyPatch compares against
	// it); the signature is checked against this server's pins.
	_, err = s.verifyAndStore(ctx, p.Filename, strings.ToLower(p.SHA256), data)
	return err
}
