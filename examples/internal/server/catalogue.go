package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// PatchReader is a stored tarball, read a piece at a time: downloads are
// served from it with http.ServeContent (ranges included), never from a
// whole in-memory copy.
type PatchReader interface {
	io.ReadSeeker
	io.Closer
}

// Catalogue stores verified patches. Implementations are safe for
// concurrent use. The cost of every call grows with its answer, not with
// the number of patches held: the machine poll (ListKernel) reads one
// kernel's entries and an upload (Put) writes one entry.
type Catalogue interface {
	// Put records a verified patch whose bytes are the file f (read from
	// its start). The file catalogue moves f into place; the caller
	// removes f.Name() afterwards in any case.
	Put(ctx context.Context, info PatchInfo, f *os.File) error
	// List returns every patch, sorted by filename.
	List(ctx context.Context) ([]PatchInfo, error)
	// ListKernel returns the patches for one kernel, sorted by filename.
	ListKernel(ctx context.Context, kernel string) ([]PatchInfo, error)
	// Lookup returns one patch's entry.
	Lookup(ctx context.Context, filename string) (PatchInfo, error)
	// Open returns one patch's entry and its bytes; the caller closes
	// the reader.
	Open(ctx context.Context, filename string) (PatchInfo, PatchReader, error)
	// Ping reports whether the storage answers (for /readyz).
	Ping(ctx context.Context) error
}

// fileCatalogue keeps patches in dir so that they survive a restart,
// crash-safe: after a kill (or power loss) at any point it lists exactly
// what it serves.
//
// Layout: each patch's entry is NAME.json; its tarball is blobs/SHA256,
// named by content and never rewritten. The entry is the single point of
// truth: it is written last (temporary file, fsync, rename, fsync of the
// directory), after its tarball is durably in place, so an entry always
// names a complete tarball with its hash. A crash leaves at most a
// tarball no entry names (removed at start-up) or a *.tmp file (removed
// too); an entry never pairs with other bytes than the ones it hashes.
// An upload writes one entry, never the whole index.
type fileCatalogue struct {
	dir string
	log *slog.Logger
	// step, when set, is called after each step of Put with its name (a
	// test hook: the crash tests kill the process there).
	step func(string)

	putMu    sync.Mutex // serialises Put: blob reference counts stay exact
	mu       sync.RWMutex
	idx      map[string]PatchInfo
	byKernel map[string][]PatchInfo // each sorted by filename
}

const (
	entrySuffix = ".json"
	tmpSuffix   = ".tmp"
	blobDir     = "blobs"
)

// PutSteps are the steps of the file store's Put, in order, as its test
// hook names them: the integration test kills the server after each.
var PutSteps = []string{
	"tarball-synced",     // the upload's temporary file is fsynced
	"tarball-renamed",    // ... and renamed to blobs/SHA256
	"tarball-dir-synced", // ... and blobs/ fsynced: the tarball is durable
	"entry-written",      // NAME.json.tmp written and fsynced
	"entry-renamed",      // ... renamed to NAME.json: the commit point
	"entry-dir-synced",   // ... and the directory fsynced: the entry is durable
	"old-tarball-removed",
}

var validSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func newFileCatalogue(dir string) (*fileCatalogue, error) {
	return openFileCatalogue(dir, nil)
}

// openFileCatalogue reads the entries in dir and repairs what a crash
// can leave: *.tmp files and tarballs no entry names are removed; an
// entry whose tarball is missing or has the wrong size (only possible
// when the files were changed behind the server's back) is removed and
// logged. Layouts of earlier versions (index.json; tarballs named NAME
// beside NAME.json) are converted once, each tarball's hash checked.
func openFileCatalogue(dir string, log *slog.Logger) (*fileCatalogue, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &fileCatalogue{dir: dir, log: log, idx: map[string]PatchInfo{}, byKernel: map[string][]PatchInfo{}}
	if err := os.MkdirAll(filepath.Join(dir, blobDir), 0o700); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// index.json is the single index of earlier versions: read once, its
	// entries are rewritten one file each below.
	var legacy []PatchInfo
	if data, err := root.ReadFile("index.json"); err == nil {
		if err := json.Unmarshal(data, &legacy); err != nil {
			return nil, fmt.Errorf("patch index %s: %w", filepath.Join(dir, "index.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	changed := false
	for _, p := range legacy {
		if !ValidFilename(p.Filename) {
			continue
		}
		if ok, err := c.adopt(root, p); err != nil {
			return nil, err
		} else if ok {
			if err := writeEntry(root, p); err != nil {
				return nil, err
			}
		}
	}
	if legacy != nil {
		if err := root.Remove("index.json"); err != nil {
			return nil, err
		}
		changed = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// An entry or conversion cut short: never committed.
			if err := root.Remove(name); err != nil {
				return nil, err
			}
			changed = true
			continue
		}
		name, ok := strings.CutSuffix(name, entrySuffix)
		if !ok || !ValidFilename(name) {
			continue
		}
		data, err := root.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		var p PatchInfo
		if err := json.Unmarshal(data, &p); err != nil || p.Filename != name || !validSHA256.MatchString(p.SHA256) {
			return nil, fmt.Errorf("patch entry %s: not an entry for %s", filepath.Join(dir, e.Name()), name)
		}
		ok, err = c.adopt(root, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			if err := root.Remove(e.Name()); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	// Tarballs of earlier versions' layout, converted above or not named
	// by any entry, and blobs no entry names (a crash before the entry's
	// commit, or after it before the old tarball's removal) go.
	for _, e := range ents {
		if ValidFilename(e.Name()) && !e.IsDir() {
			if err := root.Remove(e.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			changed = true
		}
	}
	blobs, err := os.ReadDir(filepath.Join(dir, blobDir))
	if err != nil {
		return nil, err
	}
	used := make(map[string]bool, len(c.idx))
	for _, p := range c.idx {
		used[p.SHA256] = true
	}
	for _, b := range blobs {
		if !used[b.Name()] {
			if err := root.Remove(blobDir + "/" + b.Name()); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if changed {
		if err := syncDir(root, blobDir); err != nil {
			return nil, err
		}
		if err := syncDir(root, "."); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// adopt records p if its tarball is in place: blobs/SHA256 of p's size,
// or (earlier layout) a file NAME whose hash is p's, moved there. It
// reports false, logging why, for an entry with no such tarball.
func (c *fileCatalogue) adopt(root *os.Root, p PatchInfo) (bool, error) {
	if !validSHA256.MatchString(p.SHA256) {
		c.dropped(p, "the entry's sha256 is not a SHA-256")
		return false, nil
	}
	blob := blobDir + "/" + p.SHA256
	if st, err := root.Stat(blob); err == nil {
		if st.Size() != p.Size || !st.Mode().IsRegular() {
			c.dropped(p, fmt.Sprintf("the tarball has %d bytes, the entry says %d", st.Size(), p.Size))
			return false, nil
		}
		c.add(p)
		return true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	f, err := root.Open(p.Filename)
	if errors.Is(err, os.ErrNotExist) {
		c.dropped(p, "no tarball")
		return false, nil
	} else if err != nil {
		return false, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return false, err
	}
	if hex.EncodeToString(h.Sum(nil)) != p.SHA256 || n != p.Size {
		c.dropped(p, "the tarball does not match the entry's SHA-256 and size")
		return false, nil
	}
	if err := root.Rename(p.Filename, blob); err != nil {
		return false, err
	}
	if err := syncDir(root, blobDir); err != nil {
		return false, err
	}
	c.add(p)
	return true, nil
}

func (c *fileCatalogue) dropped(p PatchInfo, why string) {
	c.log.Error("patch entry without its tarball removed", "event", "patch_entry_dropped",
		"filename", p.Filename, "sha256", p.SHA256, "reason", why)
}

// writeEntry makes p's entry durable: temporary file, fsync, rename,
// fsync of the directory.
func writeEntry(root *os.Root, p PatchInfo) error {
	if err := writeEntryTmp(root, p); err != nil {
		return err
	}
	if err := root.Rename(p.Filename+entrySuffix+tmpSuffix, p.Filename+entrySuffix); err != nil {
		return err
	}
	return syncDir(root, ".")
}

func writeEntryTmp(root *os.Root, p PatchInfo) error {
	js, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := root.OpenFile(p.Filename+entrySuffix+tmpSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(js); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory, making the renames and removals in it
// durable.
func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// add records p in the index; c.mu must be held (or c not yet shared).
func (c *fileCatalogue) add(p PatchInfo) {
	if old, ok := c.idx[p.Filename]; ok {
		list := c.byKernel[old.Kernel]
		if i, found := slices.BinarySearchFunc(list, old.Filename, cmpFilename); found {
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			delete(c.byKernel, old.Kernel)
		} else {
			c.byKernel[old.Kernel] = list
		}
	}
	c.idx[p.Filename] = p
	list := c.byKernel[p.Kernel]
	i, _ := slices.BinarySearchFunc(list, p.Filename, cmpFilename)
	c.byKernel[p.Kernel] = slices.Insert(list, i, p)
}

func cmpFilename(p PatchInfo, name string) int { return strings.Compare(p.Filename, name) }

func (c *fileCatalogue) hook(step string) {
	if c.step != nil {
		c.step(step)
	}
}

// Put makes the tarball durable under its hash, then commits the entry
// (see fileCatalogue). Readers see the old entry and tarball until the
// commit, the new ones after it; a download of the old tarball in flight
// keeps reading it after its removal.
func (c *fileCatalogue) Put(_ context.Context, info PatchInfo, f *os.File) error {
	if !validSHA256.MatchString(info.SHA256) || !ValidFilename(info.Filename) {
		return fmt.Errorf("server: bad patch entry %q", info.Filename)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	c.hook("tarball-synced")
	c.putMu.Lock()
	defer c.putMu.Unlock()
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// Same content already stored: the rename replaces it with the same
	// bytes (a reader of the old file keeps its own).
	if err := os.Rename(f.Name(), filepath.Join(c.dir, blobDir, info.SHA256)); err != nil {
		return err
	}
	c.hook("tarball-renamed")
	if err := syncDir(root, blobDir); err != nil {
		return err
	}
	c.hook("tarball-dir-synced")
	if err := writeEntryTmp(root, info); err != nil {
		return err
	}
	c.hook("entry-written")
	if err := root.Rename(info.Filename+entrySuffix+tmpSuffix, info.Filename+entrySuffix); err != nil {
		return err
	}
	c.hook("entry-renamed")
	if err := syncDir(root, "."); err != nil {
		return err
	}
	c.hook("entry-dir-synced")
	c.mu.Lock()
	old, had := c.idx[info.Filename]
	c.add(info)
	inUse := false
	if had {
		for _, p := range c.idx {
			if p.SHA256 == old.SHA256 {
				inUse = true
				break
			}
		}
	}
	c.mu.Unlock()
	// The replaced tarball goes once no entry names it; left behind by a
	// crash, start-up removes it. Not fsynced: its return is harmless.
	if had && !inUse {
		if err := root.Remove(blobDir + "/" + old.SHA256); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("removing a replaced tarball", "event", "patch_blob_remove_failed", "sha256", old.SHA256, "error", err.Error())
		}
	}
	c.hook("old-tarball-removed")
	return nil
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

func (c *fileCatalogue) ListKernel(_ context.Context, kernel string) ([]PatchInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.byKernel[kernel]), nil
}

func (c *fileCatalogue) Lookup(_ context.Context, name string) (PatchInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.idx[name]
	if !ok {
		return PatchInfo{}, ErrNoPatch
	}
	return p, nil
}

// Open returns the stored file. It is served as stored: if someone
// changes the file on disk, the client's hash check is what catches it.
func (c *fileCatalogue) Open(_ context.Context, name string) (PatchInfo, PatchReader, error) {
	// The entry and the file are read under one lock, so a concurrent Put
	// cannot pair the old entry (and its ETag) with the new bytes.
	c.mu.RLock()
	defer c.mu.RUnlock()
	info, ok := c.idx[name]
	if !ok {
		return PatchInfo{}, nil, ErrNoPatch
	}
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return PatchInfo{}, nil, err
	}
	defer root.Close()
	f, err := root.Open(blobDir + "/" + info.SHA256)
	if err != nil {
		return PatchInfo{}, nil, err
	}
	return info, f, nil
}

func (c *fileCatalogue) Ping(context.Context) error {
	_, err := os.Stat(c.dir)
	return err
}

// pgCatalogue keeps patches in PostgreSQL so that every server sharing the
// database serves the same set. Tarballs are stored by SHA-256 in chunks
// of pgChunkSize, written and read one chunk at a time, so no operation
// holds a whole tarball in memory.
//
// The machine poll's per-kernel list is cached for pgKernelCacheTTL: a
// fleet polling the same few kernels costs one query per kernel per TTL,
// not one per request. An upload on this instance clears the cache; one on
// another instance sharing the database shows within the TTL.
type pgCatalogue struct {
	db      *sql.DB
	timeout time.Duration // bound on each database call (--database-timeout); 0: none

	mu    sync.Mutex
	cache map[string]kernelEntry
	ttl   time.Duration // pgKernelCacheTTL; 0 turns the cache off (benchmarks)
	now   func() time.Time
}

type kernelEntry struct {
	list    []PatchInfo
	expires time.Time
}

const (
	pgKernelCacheTTL  = time.Second
	pgKernelCacheSize = 4096 // kernels; beyond it the cache starts over
)

// pgChunkSize bounds the memory one download or upload holds: 300
// concurrent readers hold 300 chunks (bench/mem.sh).
const pgChunkSize = 64 << 10

func newPGCatalogue(ctx context.Context, db *sql.DB) (*pgCatalogue, error) {
	// lpsec_example_patches (one bytea per patch) of earlier versions is
	// not read: it held whole tarballs in single values.
	_, err := db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS lpsec_example_patch_index (
			filename text PRIMARY KEY,
			sha256 text NOT NULL,
			kernel text NOT NULL,
			version text NOT NULL,
			signer text NOT NULL,
			size bigint NOT NULL,
			added timestamptz NOT NULL);
		CREATE INDEX IF NOT EXISTS lpsec_example_patch_index_kernel ON lpsec_example_patch_index (kernel, filename);
		CREATE TABLE IF NOT EXISTS lpsec_example_patch_chunks (
			sha256 text NOT NULL,
			seq integer NOT NULL,
			data bytea NOT NULL,
			PRIMARY KEY (sha256, seq));`)
	if err != nil {
		return nil, fmt.Errorf("patch catalogue: create tables: %w", err)
	}
	return &pgCatalogue{db: db, cache: map[string]kernelEntry{}, ttl: pgKernelCacheTTL, now: time.Now}, nil
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

func (c *pgCatalogue) Put(ctx context.Context, p PatchInfo, f *os.File) (err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// A watchdog rearmed before each statement bounds every statement by
	// the timeout (cancelling ctx aborts the transaction): a frozen
	// database fails the upload within one timeout, while a large healthy
	// upload of many chunks is not cut short.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kick := func() {}
	if c.timeout > 0 {
		wd := time.AfterFunc(c.timeout, cancel)
		defer wd.Stop()
		kick = func() { wd.Reset(c.timeout) }
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Concurrent uploads of the same content serialise here instead of
	// failing on the chunks' primary key.
	kick()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, p.SHA256); err != nil {
		return err
	}
	var have bool
	kick()
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM lpsec_example_patch_chunks WHERE sha256 = $1)`, p.SHA256).Scan(&have); err != nil {
		return err
	}
	if !have {
		buf := make([]byte, pgChunkSize)
		for seq := 0; ; seq++ {
			n, rerr := io.ReadFull(f, buf)
			if n > 0 {
				kick()
				if _, err := tx.ExecContext(ctx, `INSERT INTO lpsec_example_patch_chunks (sha256, seq, data) VALUES ($1, $2, $3)`, p.SHA256, seq, buf[:n]); err != nil {
					return err
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
	}
	var old sql.NullString
	kick()
	if err := tx.QueryRowContext(ctx, `SELECT sha256 FROM lpsec_example_patch_index WHERE filename = $1 FOR UPDATE`, p.Filename).Scan(&old); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	kick()
	if _, err := tx.ExecContext(ctx, `INSERT INTO lpsec_example_patch_index (filename, sha256, kernel, version, signer, size, added)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (filename) DO UPDATE SET sha256 = $2, kernel = $3, version = $4, signer = $5, size = $6, added = $7`,
		p.Filename, p.SHA256, p.Kernel, p.Version, p.Signer, p.Size, p.Added); err != nil {
		return err
	}
	// The replaced content goes once no entry names it (a download of it
	// in flight then fails rather than mixing two tarballs).
	if old.Valid && old.String != p.SHA256 {
		kick()
		if _, err := tx.ExecContext(ctx, `DELETE FROM lpsec_example_patch_chunks WHERE sha256 = $1
			AND NOT EXISTS (SELECT 1 FROM lpsec_example_patch_index WHERE sha256 = $1)`, old.String); err != nil {
			return err
		}
	}
	kick()
	if err := tx.Commit(); err != nil {
		return err
	}
	c.mu.Lock()
	clear(c.cache)
	c.mu.Unlock()
	return nil
}

const pgColumns = `filename, sha256, kernel, version, signer, size, added`

func scanInfo(sc interface{ Scan(...any) error }) (PatchInfo, error) {
	var p PatchInfo
	err := sc.Scan(&p.Filename, &p.SHA256, &p.Kernel, &p.Version, &p.Signer, &p.Size, &p.Added)
	return p, err
}

func (c *pgCatalogue) query(ctx context.Context, q string, args ...any) ([]PatchInfo, error) {
	ctx, cancel := bound(ctx, c.timeout)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []PatchInfo{}
	for rows.Next() {
		p, err := scanInfo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (c *pgCatalogue) List(ctx context.Context) ([]PatchInfo, error) {
	return c.query(ctx, `SELECT `+pgColumns+` FROM lpsec_example_patch_index ORDER BY filename`)
}

func (c *pgCatalogue) ListKernel(ctx context.Context, kernel string) ([]PatchInfo, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[kernel]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return slices.Clone(e.list), nil
	}
	list, err := c.query(ctx, `SELECT `+pgColumns+` FROM lpsec_example_patch_index WHERE kernel = $1 ORDER BY filename`, kernel)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.cache) >= pgKernelCacheSize {
		clear(c.cache)
	}
	c.cache[kernel] = kernelEntry{list: list, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return slices.Clone(list), nil
}

func (c *pgCatalogue) Lookup(ctx context.Context, name string) (PatchInfo, error) {
	ctx, cancel := bound(ctx, c.timeout)
	defer cancel()
	p, err := scanInfo(c.db.QueryRowContext(ctx, `SELECT `+pgColumns+` FROM lpsec_example_patch_index WHERE filename = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return PatchInfo{}, ErrNoPatch
	}
	return p, err
}

func (c *pgCatalogue) Open(ctx context.Context, name string) (PatchInfo, PatchReader, error) {
	p, err := c.Lookup(ctx, name)
	if err != nil {
		return PatchInfo{}, nil, err
	}
	return p, &pgReader{ctx: ctx, db: c.db, timeout: c.timeout, sha: p.SHA256, size: p.Size, chunk: -1}, nil
}

func (c *pgCatalogue) Ping(ctx context.Context) error { return c.db.PingContext(ctx) }

// pgReader reads a stored tarball one chunk (one short query) at a time,
// holding no connection between reads: a slow reader costs one chunk of
// memory and no database connection.
type pgReader struct {
	ctx     context.Context
	db      *sql.DB
	timeout time.Duration // per chunk
	sha     string
	size    int64
	pos     int64
	chunk   int64 // index of buf's chunk, -1 for none
	buf     []byte
}

// errChunkMissing is a tarball replaced while being read.
var errChunkMissing = errors.New("server: patch content changed while being read")

func (r *pgReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	want := r.pos / pgChunkSize
	if want != r.chunk {
		if err := r.load(want); err != nil {
			return 0, err
		}
	}
	off := r.pos - r.chunk*pgChunkSize
	if off >= int64(len(r.buf)) {
		return 0, errChunkMissing
	}
	n := copy(p, r.buf[off:])
	r.pos += int64(n)
	return n, nil
}

// load reads chunk seq into r.buf, reusing its memory: a download
// allocates one chunk buffer, not one per chunk.
func (r *pgReader) load(seq int64) error {
	r.chunk = -1
	ctx, cancel := bound(r.ctx, r.timeout)
	defer cancel()
	rows, err := r.db.QueryContext(ctx, `SELECT data FROM lpsec_example_patch_chunks WHERE sha256 = $1 AND seq = $2`, r.sha, seq)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errChunkMissing
	}
	var raw sql.RawBytes
	if err := rows.Scan(&raw); err != nil {
		return err
	}
	if r.buf == nil {
		r.buf = make([]byte, 0, pgChunkSize)
	}
	r.buf = append(r.buf[:0], raw...)
	if err := rows.Close(); err != nil {
		return err
	}
	r.chunk = seq
	return nil
}

func (r *pgReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("server: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("server: negative position")
	}
	r.pos = offset
	return offset, nil
}

func (r *pgReader) Close() error { r.buf = nil; return nil }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
