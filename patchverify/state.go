package patchverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Applied records a patch a client has applied.
type Applied struct {
	Kernel  string    `json:"kernel"`  // kernel release, the module's vermagic release
	Module  string    `json:"module"`  // module name, as .modinfo name= says
	Version int       `json:"version"` // metadata version
	SHA256  string    `json:"sha256"`  // the tarball's checksum
	Time    time.Time `json:"time"`
}

// AppliedState remembers, per kernel release and module name, the patch
// last applied: what VerifyPatch compares a new patch's version with
// (WithAppliedState) so that a server or mirror cannot roll a machine back.
// Implementations must be safe for concurrent use.
type AppliedState interface {
	// Applied returns the record for kernel and module; ok is false when
	// nothing was applied yet. A state it cannot read is an error, never
	// an empty state.
	Applied(ctx context.Context, kernel, module string) (a Applied, ok bool, err error)
	// Record stores a as the patch applied for a.Kernel and a.Module,
	// replacing the previous record, durably before it returns.
	Record(ctx context.Context, a Applied) error
}

const stateFormat = "lpsec-patchverify-applied/1"

type stateFile struct {
	Format  string          `json:"format"`
	Patches json.RawMessage `json:"patches"`
	// SHA256 covers Patches as stored, so that a truncated or altered file
	// is refused rather than read as fewer patches (which would allow a
	// rollback).
	SHA256 string `json:"sha256"`
}

// FileState is an AppliedState kept in one JSON file, replaced atomically
// (temporary file, fsync, rename, fsync of the directory) on every Record,
// so a crash leaves the old or the new state, never a mix. A missing file is
// an empty state (the first run); a file that is too large, truncated or
// whose checksum does not match is ErrCorruptState until an operator
// removes it. It protects against servers and mirrors, not against whoever
// can write the file.
type FileState struct {
	path string
	max  int64
	mu   sync.Mutex
}

// OpenFileState opens the state kept at path, reading it once to refuse a
// corrupt file at start. WithMaxStateSize bounds the file (default
// DefaultMaxStateSize).
func OpenFileState(path string, opts ...Option) (*FileState, error) {
	cfg, err := build("OpenFileState", forState, opts)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("patchverify: OpenFileState needs a path")
	}
	s := &FileState{path: path, max: cfg.maxStateSize}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func stateKey(kernel, module string) string { return kernel + "\x00" + module }

func (s *FileState) load() (map[string]Applied, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Applied{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("patchverify: applied state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, s.max+1))
	if err != nil {
		return nil, fmt.Errorf("patchverify: applied state: %w", err)
	}
	if int64(len(data)) > s.max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptState, s.path, s.max)
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, s.path, err)
	}
	if sf.Format != stateFormat {
		return nil, fmt.Errorf("%w: %s: format %q, want %q", ErrCorruptState, s.path, sf.Format, stateFormat)
	}
	sum := sha256.Sum256(sf.Patches)
	if hex.EncodeToString(sum[:]) != sf.SHA256 {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorruptState, s.path)
	}
	var list []Applied
	if err := json.Unmarshal(sf.Patches, &list); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptState, s.path, err)
	}
	m := make(map[string]Applied, len(list))
	for _, a := range list {
		k := stateKey(a.Kernel, a.Module)
		if _, dup := m[k]; dup || a.Kernel == "" || a.Module == "" || a.Version < 1 {
			return nil, fmt.Errorf("%w: %s: bad or repeated record for %q %q", ErrCorruptState, s.path, a.Kernel, a.Module)
		}
		m[k] = a
	}
	return m, nil
}

// Applied implements AppliedState, reading the file each time so that
// several processes see each other's records.
func (s *FileState) Applied(ctx context.Context, kernel, module string) (Applied, bool, error) {
	if err := ctx.Err(); err != nil {
		return Applied{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return Applied{}, false, err
	}
	a, ok := m[stateKey(kernel, module)]
	return a, ok, nil
}

// Record implements AppliedState.
func (s *FileState) Record(ctx context.Context, a Applied) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.Kernel == "" || a.Module == "" || a.Version < 1 {
		return errors.New("patchverify: Record needs a kernel, a module and a version of at least 1")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	m[stateKey(a.Kernel, a.Module)] = a
	list := make([]Applied, 0, len(m))
	for _, v := range m {
		list = append(list, v)
	}
	// Sorted, so the file is stable and diffable.
	slices.SortFunc(list, func(x, y Applied) int {
		return strings.Compare(stateKey(x.Kernel, x.Module), stateKey(y.Kernel, y.Module))
	})
	patches, err := json.Marshal(list)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(patches)
	data, err := json.Marshal(stateFile{Format: stateFormat, Patches: patches, SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if int64(len(data)) > s.max {
		return fmt.Errorf("%w: applied state would be %d bytes, more than %d", ErrTooLarge, len(data), s.max)
	}
	return writeFileAtomic(s.path, data)
}

// writeFileAtomic replaces path with data: a private temporary file in the
// same directory, written and fsynced, renamed over path, and the directory
// fsynced so that the rename itself survives a crash.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("patchverify: applied state: %w", err)
	}
	return nil
}
