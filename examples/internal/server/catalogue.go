package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// PatchInfo is what the server knows about a patch it serves. It is only
// ever recorded after the patch's hash and module signature verified.
type PatchInfo struct {
	Filename string    `json:"filename"`
	SHA256   string    `json:"sha256"`
	Kernel   string    `json:"kernel"`
	Version  string    `json:"version"`
	Size     int64     `json:"size"`
	Signer   string    `json:"signer,omitempty"`
	Added    time.Time `json:"added"`
}

// ErrNoPatch is returned for a filename the catalogue does not hold.
var ErrNoPatch = errors.New("server: no such patch")

// validFilename accepts what live-patch services name their tarballs and
// nothing that could escape a directory or a URL path segment.
var validFilename = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}\.tar(\.bz2|\.gz|\.xz)?$`)

// ValidFilename reports whether name is acceptable as a patch filename.
func ValidFilename(name string) bool {
	return validFilename.MatchString(name) && !strings.Contains(name, "..")
}

// Catalogue stores verified patches. Implementations are safe for
// concurrent use.
type Catalogue interface {
	Put(ctx context.Context, info PatchInfo, data []byte) error
	List(ctx context.Context) ([]PatchInfo, error)
	Get(ctx context.Context, filename string) (PatchInfo, []byte, error)
}

// fileCatalogue keeps the index in memory and, when dir is set, the
// tarballs and index in dir so they survive a restart.
type fileCatalogue struct {
	dir string
	mu  sync.RWMutex
	idx map[string]PatchInfo
	mem map[string][]byte // only when dir == ""
}

func newFileCatalogue(dir string) (*fileCatalogue, error) {
	c := &fileCatalogue{dir: dir, idx: map[string]PatchInfo{}, mem: map[string][]byte{}}
	if dir == "" {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	var list []PatchInfo
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("patch index %s: %w", filepath.Join(dir, "index.json"), err)
	}
	for _, p := range list {
		if ValidFilename(p.Filename) {
			c.idx[p.Filename] = p
		}
	}
	return c, nil
}

func (c *fileCatalogue) Put(_ context.Context, info PatchInfo, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		c.mem[info.Filename] = bytes.Clone(data)
		c.idx[info.Filename] = info
		return nil
	}
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tmp := info.Filename + ".tmp"
	if err := root.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := root.Rename(tmp, info.Filename); err != nil {
		return err
	}
	c.idx[info.Filename] = info
	list := make([]PatchInfo, 0, len(c.idx))
	for _, p := range c.idx {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b PatchInfo) int { return strings.Compare(a.Filename, b.Filename) })
	js, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := root.WriteFile("index.json.tmp", js, 0o600); err != nil {
		return err
	}
	return root.Rename("index.json.tmp", "index.json")
}

func (c *fileCatalogue) List(context.Context) ([]PatchInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	list := make([]PatchInfo, 0, len(c.idx))
	for _, p := range c.idx {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b PatchInfo) int { return strings.Compare(a.Filename, b.Filename) })
	return list, nil
}

// Get returns the stored bytes. They are served as stored: if someone
// changes the file on disk, the client's hash check is what catches it.
func (c *fileCatalogue) Get(_ context.Context, name string) (PatchInfo, []byte, error) {
	c.mu.RLock()
	info, ok := c.idx[name]
	data := c.mem[name]
	c.mu.RUnlock()
	if !ok {
		return PatchInfo{}, nil, ErrNoPatch
	}
	if c.dir == "" {
		return info, data, nil
	}
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return PatchInfo{}, nil, err
	}
	defer root.Close()
	data, err = root.ReadFile(name)
	if err != nil {
		return PatchInfo{}, nil, err
	}
	return info, data, nil
}

// pgCatalogue keeps patches in PostgreSQL so that every server sharing the
// database serves the same set.
type pgCatalogue struct {
	db      *sql.DB
	timeout time.Duration // bound on each call (--database-timeout)
}

// bound gives one database call its own deadline, so a frozen database
// costs a request the timeout and a 503, never a hang (pgx closes the
// connection when the deadline passes).
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func newPGCatalogue(ctx context.Context, db *sql.DB) (*pgCatalogue, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lpsec_example_patches (
		filename text PRIMARY KEY,
		sha256 text NOT NULL,
		kernel text NOT NULL,
		version text NOT NULL,
		signer text NOT NULL,
		added timestamptz NOT NULL,
		data bytea NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("patch catalogue: create table: %w", err)
	}
	return &pgCatalogue{db: db}, nil
}

func (c *pgCatalogue) Put(ctx context.Context, p PatchInfo, data []byte) error {
	ctx, cancel := bound(ctx, c.timeout)
	defer cancel()
	_, err := c.db.ExecContext(ctx, `INSERT INTO lpsec_example_patches (filename, sha256, kernel, version, signer, added, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (filename) DO UPDATE SET sha256 = $2, kernel = $3, version = $4, signer = $5, added = $6, data = $7`,
		p.Filename, p.SHA256, p.Kernel, p.Version, p.Signer, p.Added, data)
	return err
}

func (c *pgCatalogue) List(ctx context.Context) ([]PatchInfo, error) {
	ctx, cancel := bound(ctx, c.timeout)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, `SELECT filename, sha256, kernel, version, signer, added, length(data) FROM lpsec_example_patches ORDER BY filename`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PatchInfo
	for rows.Next() {
		var p PatchInfo
		if err := rows.Scan(&p.Filename, &p.SHA256, &p.Kernel, &p.Version, &p.Signer, &p.Added, &p.Size); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (c *pgCatalogue) Get(ctx context.Context, name string) (PatchInfo, []byte, error) {
	ctx, cancel := bound(ctx, c.timeout)
	defer cancel()
	var p PatchInfo
	var data []byte
	err := c.db.QueryRowContext(ctx, `SELECT filename, sha256, kernel, version, signer, added, data FROM lpsec_example_patches WHERE filename = $1`, name).
		Scan(&p.Filename, &p.SHA256, &p.Kernel, &p.Version, &p.Signer, &p.Added, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return PatchInfo{}, nil, ErrNoPatch
	}
	if err != nil {
		return PatchInfo{}, nil, err
	}
	p.Size = int64(len(data))
	return p, data, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
