package macaroon

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"
	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"golang.org/x/crypto/nacl/box"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/macaroon/internal/core"
)

const (
	maxDischargeBody = 16 << 10
	maxCaveatBytes   = 4096
	pubPrefixLen     = 4
)

// CheckFunc decides whether condition (decrypted from the caveat, chosen
// by the first party) holds for the request r (nil when Discharge is
// called directly). A nil error grants the discharge. Its error is logged
// but never sent to the client.
type CheckFunc func(ctx context.Context, r *http.Request, condition string) error

// Discharger is the third-party side: it discharges caveats addressed to
// its key. It serves the httpbakery endpoints POST /discharge, GET
// /publickey and GET /discharge/info at its root; mount it at the
// location's root (use http.StripPrefix under a path).
type Discharger struct {
	key   *bakery.KeyPair
	check CheckFunc
	cfg   *core.Settings
	log   *slog.Logger
	// identify is set by NewIdentityDischarger: the discharge declares
	// who it names.
	identify IdentifyFunc
}

// NewDischarger returns a Discharger for the third party's key pair (first
// parties encrypt caveats to its public key) that grants a discharge when
// check returns nil. Options: WithDischargeTTL, WithClock, WithLogger; any
// other, or a nil check, is ErrInvalidOption, and a bad key pair
// ErrInvalidKey.
func NewDischarger(key *bakery.KeyPair, check CheckFunc, opts ...Option) (*Discharger, error) {
	if err := CheckKeyPair(key); err != nil {
		return nil, fmt.Errorf("macaroon: NewDischarger: key: %w", err)
	}
	if check == nil {
		return nil, fmt.Errorf("%w: NewDischarger: nil CheckFunc", ErrInvalidOption)
	}
	cfg, err := core.Build("NewDischarger", core.ForDischarger, opts)
	if err != nil {
		return nil, err
	}
	return &Discharger{key: key, check: check, cfg: cfg, log: cfg.Log}, nil
}

// PublicKey returns the discharger's public key, to pin in the first
// party's Service with WithThirdParty.
func (d *Discharger) PublicKey() bakery.PublicKey { return d.key.Public }

// Discharge discharges the third-party caveat with the given id; payload is
// the encrypted caveat for version 3 caveats (the bakery keeps it beside
// the macaroon) and nil when the id itself is the encrypted caveat. r is
// passed to the Check callback. Errors match ErrMalformed (the caveat
// cannot be decrypted or decoded) or ErrDenied (Check refused).
func (d *Discharger) Discharge(ctx context.Context, r *http.Request, id, payload []byte) (m *bakery.Macaroon, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			m, err = nil, fmt.Errorf("%w: input made a dependency panic", ErrMalformed)
		}
		if err != nil {
			d.log.WarnContext(ctx, "discharge refused", "event", "discharge_refused", "reason", reason(err), "error", err.Error())
		}
	}()
	if len(id) == 0 || len(id) > maxIDBytes {
		return nil, fmt.Errorf("%w: caveat id length out of range", ErrMalformed)
	}
	if len(payload) == 0 {
		payload = id
	}
	info, err := decryptCaveat(d.key, payload)
	if err != nil {
		return nil, err
	}
	cond := string(info.condition)
	if name, _, _ := checkers.ParseCaveat(cond); name == checkers.CondNeedDeclared {
		// A caveat cannot make the discharger declare anything: only
		// NewIdentityDischarger declares, and only what it established.
		return nil, fmt.Errorf("%w: need-declared caveats are not supported", ErrDenied)
	}
	if err := d.check(ctx, r, cond); err != nil {
		return nil, fmt.Errorf("%w: condition not satisfied: %w", ErrDenied, err)
	}
	var declared []checkers.Caveat
	var user string
	if d.identify != nil {
		who, err := d.identify(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("%w: identity not established: %w", ErrDenied, err)
		}
		if declared, err = declarations(who); err != nil {
			return nil, fmt.Errorf("%w: identity not declarable: %v", ErrDenied, err)
		}
		user = who.User
	}
	dm, err := bakery.NewMacaroon(info.rootKey, id, "", info.version, info.ns)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot create discharge", ErrMalformed)
	}
	// Declarations first, closed by the time-before: Service.Verify trusts
	// only the declarations in front of it, which a holder cannot write.
	for _, c := range declared {
		if err := dm.AddCaveat(ctx, c, nil, nil); err != nil {
			return nil, fmt.Errorf("macaroon: adding declaration to discharge: %w", err)
		}
	}
	exp := d.cfg.Now().Add(d.cfg.DischargeTTL)
	if err := dm.AddCaveat(ctx, checkers.TimeBeforeCaveat(exp), nil, nil); err != nil {
		return nil, fmt.Errorf("macaroon: adding time-before to discharge: %w", err)
	}
	if user != "" {
		d.log.InfoContext(ctx, "identity discharge granted", "event", "discharge_granted", "expiry", exp.UTC(), "user", user)
		return dm, nil
	}
	d.log.InfoContext(ctx, "discharge granted", "event", "discharge_granted", "expiry", exp.UTC())
	return dm, nil
}

type caveatInfo struct {
	version   bakery.Version
	rootKey   []byte
	ns        *checkers.Namespace
	condition []byte
}

// decryptCaveat decodes a version 2 or 3 third-party caveat. It replaces
// the bakery's decodeCaveat, which panics on two crafted inputs: a version
// 1 (JSON) caveat without a ThirdPartyPublicKey dereferences nil, and a
// root-key length near 2^64 overflows its bounds check
// (uint64(n)+l > len) so the slice expression panics. Anyone can craft the
// second: the encryption uses only the discharger's public key.
func decryptCaveat(key *bakery.KeyPair, c []byte) (*caveatInfo, error) {
	if len(c) > maxCaveatBytes {
		return nil, fmt.Errorf("%w: caveat longer than %d bytes", ErrMalformed, maxCaveatBytes)
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("%w: empty caveat", ErrMalformed)
	}
	version := bakery.Version(c[0])
	if version != bakery.Version2 && version != bakery.Version3 {
		return nil, fmt.Errorf("%w: unsupported caveat version %d", ErrMalformed, c[0])
	}
	if len(c) < 1+pubPrefixLen+bakery.KeyLen+bakery.NonceLen+box.Overhead {
		return nil, fmt.Errorf("%w: caveat too short (version 3 caveats need their payload)", ErrMalformed)
	}
	c = c[1:]
	if !bytes.Equal(c[:pubPrefixLen], key.Public.Key[:pubPrefixLen]) {
		return nil, fmt.Errorf("%w: caveat not encrypted to this discharger's key", ErrMalformed)
	}
	c = c[pubPrefixLen:]
	var firstParty [bakery.KeyLen]byte
	copy(firstParty[:], c[:bakery.KeyLen])
	c = c[bakery.KeyLen:]
	var nonce [bakery.NonceLen]byte
	copy(nonce[:], c[:bakery.NonceLen])
	c = c[bakery.NonceLen:]
	priv := [bakery.KeyLen]byte(key.Private.Key)
	plain, ok := box.Open(nil, c, &nonce, &firstParty, &priv)
	if !ok {
		return nil, fmt.Errorf("%w: cannot decrypt caveat", ErrMalformed)
	}
	if len(plain) < 1 || bakery.Version(plain[0]) != version {
		return nil, fmt.Errorf("%w: caveat secret part has the wrong version", ErrMalformed)
	}
	data := plain[1:]
	field := func(what string) ([]byte, error) {
		l, n := binary.Uvarint(data)
		if n <= 0 || l > uint64(len(data)-n) {
			return nil, fmt.Errorf("%w: bad %s length in caveat", ErrMalformed, what)
		}
		f := data[n : n+int(l)]
		data = data[n+int(l):]
		return f, nil
	}
	info := &caveatInfo{version: version}
	var err error
	if info.rootKey, err = field("root key"); err != nil {
		return nil, err
	}
	if version >= bakery.Version3 {
		nsData, err := field("namespace")
		if err != nil {
			return nil, err
		}
		info.ns = new(checkers.Namespace)
		if err := info.ns.UnmarshalText(nsData); err != nil {
			return nil, fmt.Errorf("%w: bad namespace in caveat", ErrMalformed)
		}
	} else {
		// What the bakery uses for caveats without a namespace.
		info.ns = checkers.New(nil).Namespace()
	}
	if len(info.rootKey) == 0 {
		return nil, fmt.Errorf("%w: empty root key in caveat", ErrMalformed)
	}
	info.condition = data
	return info, nil
}

// ServeHTTP serves the httpbakery discharge protocol.
func (d *Discharger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/discharge":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", "use POST")
			return
		}
		d.serveDischarge(w, r)
	case "/publickey", "/discharge/info":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", "use GET")
			return
		}
		resp := struct {
			PublicKey *bakery.PublicKey
			Version   bakery.Version `json:",omitempty"`
		}{PublicKey: &d.key.Public}
		if r.URL.Path == "/discharge/info" {
			resp.Version = bakery.LatestVersion
		}
		writeJSON(w, http.StatusOK, resp)
	default:
		writeError(w, http.StatusNotFound, "not found", "no such endpoint")
	}
}

func (d *Discharger) serveDischarge(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDischargeBody)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad request", "cannot parse form")
		return
	}
	id, err := formBytes(r, "id", "id64")
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad request", "bad caveat id")
		return
	}
	var payload []byte
	if c := r.Form.Get("caveat64"); c != "" {
		if payload, err = macaroon.Base64Decode([]byte(c)); err != nil {
			writeError(w, http.StatusBadRequest, "bad request", "bad base64-encoded caveat")
			return
		}
	}
	m, err := d.Discharge(r.Context(), r, id, payload)
	switch {
	case errors.Is(err, ErrDenied):
		writeError(w, http.StatusForbidden, "permission denied", "third-party caveat condition not satisfied")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad request", "cannot discharge: "+strings.TrimPrefix(err.Error(), "macaroon: "))
		return
	}
	writeJSON(w, http.StatusOK, struct{ Macaroon *bakery.Macaroon }{m})
}

// formBytes reads a value the httpbakery way: name as text, or name64 as
// base64 for binary ids.
func formBytes(r *http.Request, name, name64 string) ([]byte, error) {
	if v := r.Form.Get(name64); v != "" {
		return macaroon.Base64Decode([]byte(v))
	}
	return []byte(r.Form.Get(name)), nil
}

// writeError writes an httpbakery-style error body, which its clients (Go
// and Python) decode.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct{ Code, Message string }{code, msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"Code":"internal error","Message":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
