package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/patchverify"
	"github.com/lpsec/lpsec/token"
)

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	// Admin login through the pinned identity service (identity.go).
	mux.HandleFunc("POST /v1/admin/login/identity", s.identityLogin)

	// Admin: Basic once, for a macaroon; then one operation per endpoint.
	mux.Handle("POST /v1/admin/login", s.admin.users.refreshing(s.admin.wrap(http.HandlerFunc(s.login))))
	mux.Handle("POST /v1/admin/auth-tokens", s.mac.requireAdmin(api.OpAuthTokensCreate, s.issueRegistration))
	mux.Handle("GET /v1/admin/auth-tokens", s.mac.requireAdmin(api.OpAuthTokensList, s.listRegistrations))
	mux.Handle("DELETE /v1/admin/auth-tokens/{id}", s.mac.requireAdmin(api.OpAuthTokensRevoke, s.revoke(s.tokens.RevokeRegistration)))
	mux.Handle("POST /v1/admin/sync-tokens", s.mac.requireAdmin(api.OpSyncTokensCreate, s.issueSync))
	mux.Handle("GET /v1/admin/sync-tokens", s.mac.requireAdmin(api.OpSyncTokensList, s.listSyncs))
	mux.Handle("DELETE /v1/admin/sync-tokens/{id}", s.mac.requireAdmin(api.OpSyncTokensRevoke, s.revoke(s.tokens.RevokeSync)))
	mux.Handle("GET /v1/admin/machines", s.mac.requireAdmin(api.OpMachinesList, s.listMachines))
	mux.Handle("DELETE /v1/admin/machines/{id}", s.mac.requireAdmin(api.OpMachinesRevoke, s.revoke(s.tokens.RevokeMachine)))
	mux.Handle("POST /v1/admin/machines/release", s.mac.requireAdmin(api.OpMachinesRevoke, s.releaseMachine))
	mux.Handle("POST /v1/admin/patches", s.mac.requireAdmin(api.OpPatchesUpload, s.upload))
	mux.Handle("GET /v1/admin/patches", s.mac.requireAdmin(api.OpPatchesList, s.listAllPatches))
	mux.Handle("POST /v1/admin/sync", s.mac.requireAdmin(api.OpSyncRun, s.runSync))
	mux.Handle("GET /v1/admin/reports", s.mac.requireAdmin(api.OpReportsList, s.listReports))
	mux.Handle("POST /v1/admin/logout", s.mac.requireAdmin(api.OpLogout, s.mac.logout))
	mux.Handle("POST /v1/admin/revocations", s.mac.requireAdmin(api.OpSessionsRevoke, s.mac.revokeSessions))

	// Clients.
	mux.HandleFunc("PUT /v1/client/{machine}", s.register)
	mux.HandleFunc("GET /v1/client/{machine}/patches", s.machineOnly(s.clientPatches))
	mux.HandleFunc("POST /v1/client/{machine}/report", s.machineOnly(s.report))
	mux.HandleFunc("GET /v1/patches/{filename}", s.download)
	mux.HandleFunc("GET /v1/catalogue", s.serveCatalogue)
	mux.Handle("POST /v1/admin/catalogue", s.mac.requireAdmin(api.OpPatchesUpload, s.uploadCatalogue))

	// Downstream servers.
	mux.HandleFunc("GET /v1/sync/patches", s.syncOnly(s.syncPatches))

	// No catch-all route: the mux answers 404 and 405 (with Allow) itself,
	// in the JSON error body (jsonMuxErrors).
	// withSource is outermost: the request copy it makes must not hide the
	// route pattern the mux records on its request from instrument.
	return withSource(s.instrument(s.recoverer(jsonMuxErrors(mux))))
}

// recoverer turns a panic in a handler into a 500 and a log record, so
// one request can never take the server down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "event", "http_panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	user := s.admin.user(r.Context())
	if user == "" {
		writeError(w, http.StatusUnauthorized, "unauthorized", "authentication required")
		return
	}
	// A file edited since the last admin request is re-read first, so a
	// removed user's cached password cannot mint a new macaroon.
	if err := s.admin.users.check(r.Context(), user); err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", "authentication required")
		return
	}
	resp, err := s.mac.login(r.Context(), user)
	if err != nil {
		s.log.Error("minting admin macaroon", "event", "admin_login_failed", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot mint a macaroon now")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func parseValidFor(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 10*365*24*time.Hour {
		return time.Time{}, fmt.Errorf("valid_for must be a positive Go duration of at most 10 years")
	}
	return time.Now().Add(d), nil
}

// tokenStatus maps a store error to an HTTP answer.
func tokenStatus(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, token.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrUnknown):
		writeError(w, http.StatusNotFound, "not_found", "no such token")
	case errors.Is(err, token.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "token store unavailable")
	default:
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

func (s *Server) issueRegistration(w http.ResponseWriter, r *http.Request) {
	var req api.IssueTokenRequest
	if !decodeJSON(w, r, maxJSONBody, &req) {
		return
	}
	until, err := parseValidFor(req.ValidFor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	uses := req.Uses
	if uses == 0 {
		uses = 1
	}
	tok, rec, err := s.tokens.IssueRegistration(r.Context(), token.Registration{Tier: Tier, Name: req.Name, Uses: uses, ValidUntil: until})
	if err != nil {
		tokenStatus(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.IssuedToken{Token: tok, TokenInfo: regInfo(rec)})
}

func (s *Server) issueSync(w http.ResponseWriter, r *http.Request) {
	var req api.IssueTokenRequest
	if !decodeJSON(w, r, maxJSONBody, &req) {
		return
	}
	if req.Uses != 0 {
		writeError(w, http.StatusBadRequest, "invalid", "sync tokens have no uses count")
		return
	}
	until, err := parseValidFor(req.ValidFor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	tok, rec, err := s.tokens.IssueSync(r.Context(), token.Sync{Tier: Tier, Name: req.Name, ValidUntil: until})
	if err != nil {
		tokenStatus(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.IssuedToken{Token: tok, TokenInfo: syncInfo(rec)})
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func regInfo(r token.Registration) api.TokenInfo {
	uses, left := r.Uses, r.UsesLeft
	return api.TokenInfo{ID: r.ID, Kind: "registration", Tier: r.Tier, Name: r.Name, Uses: &uses, UsesLeft: &left,
		ValidUntil: optTime(r.ValidUntil), Created: r.Created, Revoked: r.Revoked}
}

func syncInfo(r token.Sync) api.TokenInfo {
	return api.TokenInfo{ID: r.ID, Kind: "sync", Tier: r.Tier, Name: r.Name, ValidUntil: optTime(r.ValidUntil),
		Created: r.Created, LastUsed: optTime(r.LastUsed), Revoked: r.Revoked}
}

func machineInfo(r token.Machine) api.TokenInfo {
	return api.TokenInfo{ID: r.ID, Kind: "machine", Tier: r.Tier, Machine: r.Machine, ValidUntil: optTime(r.ValidUntil),
		Created: r.Created, LastUsed: optTime(r.LastSeen), Revoked: r.Revoked, Issuer: r.Issuer}
}

func (s *Server) listRegistrations(w http.ResponseWriter, r *http.Request) {
	recs, err := s.tokens.ListRegistrations(r.Context())
	if err != nil {
		tokenStatus(w, err)
		return
	}
	out := api.TokenList{Tokens: []api.TokenInfo{}}
	for _, rec := range recs {
		out.Tokens = append(out.Tokens, regInfo(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listSyncs(w http.ResponseWriter, r *http.Request) {
	recs, err := s.tokens.ListSyncs(r.Context())
	if err != nil {
		tokenStatus(w, err)
		return
	}
	out := api.TokenList{Tokens: []api.TokenInfo{}}
	for _, rec := range recs {
		out.Tokens = append(out.Tokens, syncInfo(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revoke(fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), r.PathValue("id")); err != nil {
			tokenStatus(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// register exchanges a registration token, or a resource macaroon
// discharged by the entitlement service, for a machine token.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	machine := r.PathValue("machine")
	if !validMachine(machine) {
		writeError(w, http.StatusBadRequest, "bad_machine", "machine must be 32 lowercase hex characters (an app-specific machine ID)")
		return
	}
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		writeError(w, http.StatusBadRequest, "bad_request", "more than one Authorization header")
		return
	}
	// The scheme picks the credential: Bearer is a registration token
	// (checked by token), anything else goes to macaroon verification.
	var regToken string
	isBearer := len(authz) == 1 && isScheme(authz[0], "Bearer")
	if isBearer {
		var err error
		if regToken, err = token.BearerToken(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid_token", "registration token not accepted")
			return
		}
	}
	// Proof of possession and the retry key, for either credential.
	ropts, ok := registerOptions(w, r)
	if !ok {
		return
	}
	switch {
	case isBearer:
		tok, rec, err := s.tokens.Register(r.Context(), regToken, machine, ropts...)
		if err != nil {
			s.registerRefused(w, machine, err)
			return
		}
		s.registered(w, machine, tok, rec)
	case s.mac.hasContracts():
		// A discharged resource macaroon, or httpbakery's
		// discharge-required answer (lpsec/macaroon's middleware).
		s.mac.entitled(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, rec, err := s.tokens.RegisterExternal(r.Context(), entitledCredential(machine), machine, ropts...)
			if err != nil {
				s.registerRefused(w, machine, err)
				return
			}
			s.registered(w, machine, tok, rec)
		})).ServeHTTP(w, r)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <registration token>")
	}
}

func (s *Server) registered(w http.ResponseWriter, machine, tok string, rec token.Machine) {
	if afterRegisterCommit(w) {
		return
	}
	s.log.Info("machine registered", "event", "machine_registered", "machine", machine, "tier", rec.Tier)
	writeJSON(w, http.StatusOK, api.RegisterResponse{Machine: machine, Tier: rec.Tier, MachineToken: tok})
}

func isScheme(header, scheme string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(header, " "), " ")
	return strings.EqualFold(name, scheme)
}

func tokenReason(err error) string {
	for _, e := range []struct {
		err error
		r   string
	}{{token.ErrMalformed, "malformed"}, {token.ErrUnknown, "unknown"}, {token.ErrRevoked, "revoked"},
		{token.ErrExpired, "expired"}, {token.ErrExhausted, "exhausted"}, {token.ErrInvalid, "invalid"},
		{token.ErrMachineTaken, "taken"}} {
		if errors.Is(err, e.err) {
			return e.r
		}
	}
	return "unavailable"
}

func (s *Server) clientPatches(w http.ResponseWriter, r *http.Request) {
	kernel := r.URL.Query().Get("kernel")
	if kernel == "" || len(kernel) > 128 {
		writeError(w, http.StatusBadRequest, "bad_request", "query parameter kernel (uname -r) is required, at most 128 bytes")
		return
	}
	// Only this kernel's entries are read: the cost of a poll grows with
	// its answer, not with the catalogue.
	list, err := s.cat.ListKernel(r.Context(), kernel)
	if err != nil {
		s.storeError("catalogue", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "patch catalogue unavailable")
		return
	}
	out := api.PatchList{Patches: make([]api.Patch, 0, len(list))}
	for _, p := range list {
		out.Patches = append(out.Patches, s.entry(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) entry(p PatchInfo) api.Patch {
	return api.Patch{Filename: p.Filename, SHA256: p.SHA256, URL: s.URL + "/v1/patches/" + url.PathEscape(p.Filename),
		Version: p.Version, Kernel: p.Kernel}
}

// download serves a stored tarball with http.ServeContent: ranges,
// If-None-Match against the ETag (the SHA-256) and HEAD, read a piece at a
// time from the file or the database, never whole into memory.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("filename")
	if !ValidFilename(name) {
		writeError(w, http.StatusNotFound, "not_found", "no such patch")
		return
	}
	info, rc, err := s.cat.Open(r.Context(), name)
	if errors.Is(err, ErrNoPatch) {
		writeError(w, http.StatusNotFound, "not_found", "no such patch")
		return
	}
	if err != nil {
		s.storeError("catalogue", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "patch store unavailable")
		return
	}
	defer rc.Close()
	// Each range of a multi-range request is a seek and, on PostgreSQL, a
	// query: more than maxRanges gets the whole tarball instead, so an
	// unauthenticated request cannot cost a query per byte.
	if rg := r.Header.Get("Range"); strings.Count(rg, ",") >= maxRanges {
		r.Header.Del("Range")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+info.SHA256+`"`)
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", info.Added, rc)
	s.patchServed(cw.n)
}

// maxRanges bounds the ranges of one download request.
const maxRanges = 4

// countingWriter counts the body bytes written, for the metrics.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (s *Server) listAllPatches(w http.ResponseWriter, r *http.Request) {
	list, err := s.cat.List(r.Context())
	if err != nil {
		s.storeError("catalogue", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "patch catalogue unavailable")
		return
	}
	out := api.PatchList{Patches: []api.Patch{}}
	for _, p := range list {
		out.Patches = append(out.Patches, s.entry(p))
	}
	writeJSON(w, http.StatusOK, out)
}

// upload accepts a patch tarball only if its module signature verifies
// against --signing-cert. The body is the tarball; the optional header
// X-Patch-SHA256 makes the server check the uploader's hash too.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("filename")
	if name != "" && !ValidFilename(name) {
		writeError(w, http.StatusBadRequest, "bad_filename", "query parameter filename must name a .tar, .tar.bz2, .tar.gz or .tar.xz file without path")
		return
	}
	// The body goes to a temporary file while it is hashed: an upload
	// holds no copy of the tarball in memory on its way to verification.
	f, err := s.tempFile()
	if err != nil {
		s.storeError("incoming", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot store an upload now")
		return
	}
	defer removeTemp(f)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), http.MaxBytesReader(w, r.Body, s.opts.MaxPatchSize)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("patch larger than %d bytes", s.opts.MaxPatchSize))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "reading the patch failed")
		return
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := r.Header.Get("X-Patch-SHA256"); want != "" && !strings.EqualFold(want, sum) {
		writeError(w, http.StatusBadRequest, "checksum_mismatch", "the patch's SHA-256 is not X-Patch-SHA256")
		return
	}
	info, err := s.verifyAndStore(r.Context(), name, sum, f)
	if err != nil {
		s.log.Warn("patch upload refused", "event", "patch_upload_refused", "filename", name, "reason", err.Error())
		status := http.StatusUnprocessableEntity
		if errors.Is(err, patchverify.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, "patch_refused", err.Error())
		return
	}
	s.log.Info("patch uploaded", "event", "patch_uploaded", "filename", info.Filename, "sha256", sum, "signer", info.Signer)
	writeJSON(w, http.StatusCreated, api.UploadResponse{Patch: s.entry(info), Signer: info.Signer})
}

// tempFile is a new file in --state-dir/incoming, for an upload or a
// synced patch on its way to verification.
func (s *Server) tempFile() (*os.File, error) {
	return os.CreateTemp(s.incoming, "patch-*")
}

func removeTemp(f *os.File) {
	f.Close()
	_ = os.Remove(f.Name()) // gone already when the file catalogue moved it into place
}

// verifyAndStore runs the whole client-side pipeline on a patch in f
// (hash, tarball, module signature) before it is recorded: a server never
// serves what it has not verified.
func (s *Server) verifyAndStore(ctx context.Context, name, sum string, f *os.File) (PatchInfo, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return PatchInfo{}, err
	}
	// Given the file, patchverify.VerifyPatch reads it twice (hash, then
	// tarball) and never holds it; it holds the tarball's files, the module
	// among them (about the patch's size, up to --max-patch-size
	// uncompressed): one verification at a time keeps concurrent uploads
	// and syncs from multiplying that.
	select {
	case s.verifySem <- struct{}{}:
	case <-ctx.Done():
		return PatchInfo{}, ctx.Err()
	}
	defer func() { <-s.verifySem }()
	p, err := patchverify.VerifyPatch(ctx, f, sum, s.verifier.Load(), patchverify.WithMaxPatchSize(s.opts.MaxPatchSize))
	if err != nil {
		return PatchInfo{}, err
	}
	size := int64(0)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	head := make([]byte, 6)
	n, _ := f.ReadAt(head, 0)
	info, err := patchInfo(name, sum, head[:n], size, p)
	p = nil
	if size > 8<<20 {
		// VerifyPatch's files are garbage now: give a large patch's
		// pages back to the system at once rather than keep them.
		debug.FreeOSMemory()
	}
	if err != nil {
		return PatchInfo{}, err
	}
	if err := s.cat.Put(ctx, info, f); err != nil {
		s.storeError("catalogue", err)
		return PatchInfo{}, fmt.Errorf("storing the patch: %w", err)
	}
	return info, nil
}

func (s *Server) syncPatches(w http.ResponseWriter, r *http.Request) {
	s.listAllPatches(w, r)
}

func (s *Server) runSync(w http.ResponseWriter, r *http.Request) {
	if s.upstream == nil {
		writeError(w, http.StatusConflict, "no_upstream", "this server has no --upstream-url")
		return
	}
	res, err := s.SyncOnce(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, "sync_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ErrNoMetadata refuses a patch whose tarball has no metadata.json: the
// server would not know which kernel it is for.
var ErrNoMetadata = errors.New("patch has no metadata.json (kernel, flavour, version, architecture)")

// patchInfo describes a verified patch; without a filename it names it as
// live-patch services do: livepatch-<kernel>-<flavour>-<ver>-<arch>.tar.<c>.
func patchInfo(name, sum string, data []byte, size int64, p *patchverify.Patch) (PatchInfo, error) {
	m := p.Metadata
	if m == nil || m.Kernel == "" {
		return PatchInfo{}, ErrNoMetadata
	}
	kernel := m.Kernel
	if m.Flavour != "" {
		kernel += "-" + m.Flavour
	}
	if name == "" {
		ext := ".tar"
		switch {
		case bytes.HasPrefix(data, []byte("BZh")):
			ext = ".tar.bz2"
		case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
			ext = ".tar.gz"
		case bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
			ext = ".tar.xz"
		}
		name = fmt.Sprintf("livepatch-%s-%d-%s%s", kernel, m.Version, m.Architecture, ext)
		if !ValidFilename(name) {
			return PatchInfo{}, fmt.Errorf("metadata gives an unusable file name; pass ?filename=")
		}
	}
	signer := p.Signer.Signature.SignerName()
	if cn := p.Signer.Certificate.Subject.CommonName; cn != "" {
		signer = cn
	}
	return PatchInfo{Filename: name, SHA256: sum, Kernel: kernel, Version: strconv.Itoa(m.Version),
		Size: size, Signer: signer, Added: time.Now().UTC()}, nil
}
