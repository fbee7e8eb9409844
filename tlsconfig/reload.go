package tlsconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// keyPairFiles serves a certificate loaded from files and reloads it when
// the files change. Handshakes never wait on a reload: one handshake does
// the check while concurrent ones keep using the current pair.
type keyPairFiles struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time
	interval          time.Duration

	cur       atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // clock reading (UnixNano) of the last check

	mu       sync.Mutex // serialises reloads and guards the fields below
	certInfo os.FileInfo
	keyInfo  os.FileInfo
	digest   [sha256.Size]byte
}

func loadKeyPairFiles(s *settings) (*keyPairFiles, error) {
	k := &keyPairFiles{
		certFile: s.certFile,
		keyFile:  s.keyFile,
		logger:   s.logger,
		now:      s.now,
		interval: s.reloadInterval,
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.reloadLocked(k.now()); err != nil {
		return nil, err
	}
	k.lastCheck.Store(k.now().UnixNano())
	return k, nil
}

func (k *keyPairFiles) get(ctx context.Context) *tls.Certificate {
	if ctx == nil { // a ClientHelloInfo built outside a handshake has none
		ctx = context.Background()
	}
	now := k.now()
	last := k.lastCheck.Load()
	// A clock that stepped backwards also triggers a check, rather than
	// suspending reloads until it catches up.
	if d := now.UnixNano() - last; (d >= int64(k.interval) || d < 0) && k.mu.TryLock() {
		if k.lastCheck.CompareAndSwap(last, now.UnixNano()) {
			changed, err := k.reloadLocked(now)
			switch {
			case err != nil:
				k.logger.LogAttrs(ctx, slog.LevelError, "certificate reload failed, keeping the current certificate",
					slog.String("event", "tls_cert_reload_failed"),
					slog.String("cert_file", k.certFile),
					slog.String("key_file", k.keyFile),
					slog.String("error", err.Error()))
			case changed:
				leaf := k.cur.Load().Leaf
				k.logger.LogAttrs(ctx, slog.LevelInfo, "certificate reloaded",
					slog.String("event", "tls_cert_reloaded"),
					slog.String("cert_file", k.certFile),
					slog.String("subject", leaf.Subject.String()),
					slog.String("serial", leaf.SerialNumber.String()),
					slog.Time("not_after", leaf.NotAfter))
			}
		}
		k.mu.Unlock()
	}
	return k.cur.Load()
}

// reloadLocked loads the pair if the files differ from the ones last seen.
// A pair that fails validation is remembered as seen, so it is reported
// once rather than on every check, and is retried when the files change.
func (k *keyPairFiles) reloadLocked(now time.Time) (changed bool, err error) {
	ci, err := os.Stat(k.certFile) // Stat follows the ..data symlink of mounted secrets
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrKeyPair, err)
	}
	ki, err := os.Stat(k.keyFile)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrKeyPair, err)
	}
	if k.cur.Load() != nil && sameFile(k.certInfo, ci) && sameFile(k.keyInfo, ki) {
		return false, nil
	}
	k.certInfo, k.keyInfo = ci, ki
	certPEM, err := readBounded(k.certFile, maxKeyPairBytes)
	if err != nil {
		return false, keyPairReadError(k.certFile, err)
	}
	keyPEM, err := readBounded(k.keyFile, maxKeyPairBytes)
	if err != nil {
		return false, keyPairReadError(k.keyFile, err)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	if k.cur.Load() != nil && bytes.Equal(digest[:], k.digest[:]) {
		return false, nil
	}
	k.digest = digest
	pair, err := tls.X509KeyPair(certPEM, keyPEM) // checks that the key matches
	if err != nil {
		// The error of X509KeyPair never includes key material.
		return false, fmt.Errorf("%w: %s: %v", ErrKeyPair, k.certFile, err)
	}
	if now.Before(pair.Leaf.NotBefore) || now.After(pair.Leaf.NotAfter) {
		return false, fmt.Errorf("%w: %s: certificate valid only from %s to %s", ErrKeyPair, k.certFile,
			pair.Leaf.NotBefore.UTC().Format(time.RFC3339), pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	k.cur.Store(&pair)
	return true, nil
}

func keyPairReadError(path string, err error) error {
	if errors.Is(err, errTooLarge) {
		return fmt.Errorf("%w: %s: more than %d bytes", ErrKeyPair, path, maxKeyPairBytes)
	}
	return fmt.Errorf("%w: %v", ErrKeyPair, err)
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
