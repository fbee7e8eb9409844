package patchverify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
)

// Download fetches rawURL with client (configure its TLS and proxies; lpsec's
// tlsconfig package builds such clients) into a private temporary file,
// hashing as it writes, and returns the file positioned at its start only if
// the SHA-256 is wantSHA256. The file is created with mode 0600 and unlinked
// at once, so no other process can open it by name and change it between
// the check and its use: read the patch from the returned file (for example
// with VerifyPatch) and close it. WithRequireHTTPS refuses plain http URLs
// and redirects; WithMaxPatchSize bounds the download.
func Download(ctx context.Context, client *http.Client, rawURL, wantSHA256 string, opts ...Option) (*os.File, error) {
	cfg, err := build("Download", forDownload, opts)
	if err != nil {
		return nil, err
	}
	want, err := parseSHA256(wantSHA256)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("patchverify: bad patch URL: %w", err)
	}
	if u.Scheme != "https" && (cfg.requireHTTPS || u.Scheme != "http") {
		return nil, fmt.Errorf("%w: scheme %q", ErrInsecureURL, u.Scheme)
	}
	if client == nil {
		return nil, errors.New("patchverify: Download needs an http.Client")
	}
	if cfg.requireHTTPS {
		c := *client // a shallow copy, so the caller's client keeps its own policy
		next := client.CheckRedirect
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to scheme %q", ErrInsecureURL, req.URL.Scheme)
			}
			if next != nil {
				return next(req, via)
			}
			if len(via) >= 10 {
				return errors.New("patchverify: stopped after 10 redirects")
			}
			return nil
		}
		client = &c
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("patchverify: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("patchverify: downloading patch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("patchverify: downloading patch: HTTP status %s", resp.Status)
	}
	if resp.ContentLength > cfg.maxPatchSize {
		return nil, fmt.Errorf("%w: patch is %d bytes, more than %d", ErrTooLarge, resp.ContentLength, cfg.maxPatchSize)
	}

	f, err := os.CreateTemp(cfg.tempDir, "lpsec-patch-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("patchverify: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("patchverify: unlinking temporary file: %w", err)
	}
	h := sha256.New()
	if _, err := hashCopy(ctx, f, h, resp.Body, cfg.maxPatchSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("patchverify: downloading patch: %w", err)
	}
	if err := checkSum(h, want); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("patchverify: %w", err)
	}
	return f, nil
}
