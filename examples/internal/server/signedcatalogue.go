package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lpsec/lpsec/patchverify"
)

// The publisher's signed patch catalogue (patchverify.Catalogue): the
// server stores it as uploaded or synced, verified against --signing-cert
// and never older than the one it holds, and serves the signed bytes
// unchanged at GET /v1/catalogue, so that clients check the publisher's
// signature, not this server's word.

func (s *Server) catalogueFile() string {
	return filepath.Join(s.opts.StateDir, "patch-catalogue.signed")
}

// currentCatalogue returns the stored catalogue, nil when there is none.
func (s *Server) currentCatalogue() ([]byte, *patchverify.Catalogue, error) {
	data, err := os.ReadFile(s.catalogueFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// Verified again, expiry aside: the file is this server's, but a
	// catalogue is served only as it was accepted.
	c, err := patchverify.VerifyCatalogue(data, s.verifier.Load(), patchverify.WithClock(func() time.Time { return time.Time{} }))
	if err != nil {
		return nil, nil, fmt.Errorf("stored catalogue: %w", err)
	}
	return data, c, nil
}

// storeCatalogue verifies signed and stores it unless it is older than the
// stored one; the same version is accepted (and kept) as unchanged. The
// caller holds s.syncMu: uploads and syncs write one at a time.
func (s *Server) storeCatalogue(signed []byte) (*patchverify.Catalogue, error) {
	_, cur, err := s.currentCatalogue()
	if err != nil {
		return nil, err
	}
	var opts []patchverify.Option
	if cur != nil {
		opts = append(opts, patchverify.WithMinCatalogueVersion(cur.Version))
	}
	c, err := patchverify.VerifyCatalogue(signed, s.verifier.Load(), opts...)
	if err != nil {
		return nil, err
	}
	if cur != nil && c.Version == cur.Version {
		return cur, nil
	}
	tmp := s.catalogueFile() + ".tmp"
	if err := os.WriteFile(tmp, signed, 0o600); err != nil {
		return nil, err
	}
	if f, err := os.Open(tmp); err == nil {
		f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, s.catalogueFile()); err != nil {
		return nil, err
	}
	return c, nil
}

// serveCatalogue answers GET /v1/catalogue with the signed bytes.
func (s *Server) serveCatalogue(w http.ResponseWriter, r *http.Request) {
	data, _, err := s.currentCatalogue()
	if err != nil {
		s.log.Error("stored catalogue unusable", "event", "patch_catalogue_unusable", "error", err.Error())
		writeError(w, http.StatusInternalServerError, "internal", "the stored catalogue cannot be served")
		return
	}
	if data == nil {
		writeError(w, http.StatusNotFound, "no_catalogue", "this server has no signed patch catalogue")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// uploadCatalogue answers POST /v1/admin/catalogue: the body is the signed
// catalogue.
func (s *Server) uploadCatalogue(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, patchverify.MaxCatalogueSize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("catalogue larger than %d bytes", patchverify.MaxCatalogueSize))
		return
	}
	s.syncMu.Lock()
	c, err := s.storeCatalogue(data)
	s.syncMu.Unlock()
	if err != nil {
		s.log.Warn("patch catalogue refused", "event", "patch_catalogue_refused", "reason", err.Error())
		writeError(w, http.StatusUnprocessableEntity, "catalogue_refused", err.Error())
		return
	}
	s.log.Info("patch catalogue stored", "event", "patch_catalogue_stored", "version", c.Version)
	writeJSON(w, http.StatusOK, map[string]any{"version": c.Version, "expires": c.Expires, "patches": len(c.Patches)})
}

// syncCatalogue fetches the upstream's catalogue and stores it unchanged
// (verified, never older). An upstream without one is not an error.
// SyncOnce calls it, holding s.syncMu, once the patches are synced.
func (s *Server) syncCatalogue(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.opts.UpstreamURL, "/")+"/v1/catalogue", nil)
	if err != nil {
		return err
	}
	resp, err := s.upstream.Do(req)
	if err != nil {
		return fmt.Errorf("upstream catalogue: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream catalogue: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, patchverify.MaxCatalogueSize+1))
	if err != nil {
		return fmt.Errorf("upstream catalogue: %w", err)
	}
	c, err := s.storeCatalogue(data)
	if err != nil {
		s.log.Warn("upstream catalogue refused", "event", "sync_catalogue_refused", "reason", err.Error())
		return fmt.Errorf("upstream catalogue: %w", err)
	}
	s.log.Info("patch catalogue synced", "event", "sync_catalogue", "version", c.Version)
	return nil
}
