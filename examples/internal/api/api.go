// Package api holds the JSON bodies of the example server's HTTP API,
// shared by the server, the client, the demo and the tests. Field names
// are a contract: integration tests of users' systems read them.
package api

import (
	"encoding/json"
	"time"
)

// Admin operations: each admin endpoint checks exactly one. A login
// macaroon carries all of them; holders may attenuate it.
const (
	OpAuthTokensCreate = "auth-tokens:create"
	OpAuthTokensList   = "auth-tokens:list"
	OpAuthTokensRevoke = "auth-tokens:revoke"
	OpSyncTokensCreate = "sync-tokens:create"
	OpSyncTokensList   = "sync-tokens:list"
	OpSyncTokensRevoke = "sync-tokens:revoke"
	OpMachinesList     = "machines:list"
	OpMachinesRevoke   = "machines:revoke"
	OpPatchesUpload    = "patches:upload"
	OpPatchesList      = "patches:list"
	OpSyncRun          = "sync:run"
	OpReportsList      = "reports:list"
	// OpLogout lets a macaroon end itself (POST /v1/admin/logout). A
	// holder who narrowed a macaroon without it cannot log out the
	// macaroon it was narrowed from.
	OpLogout = "sessions:logout"
	// OpSessionsRevoke ends other sessions (POST /v1/admin/revocations).
	OpSessionsRevoke = "sessions:revoke"
)

// AdminOps lists every admin operation.
var AdminOps = []string{
	OpAuthTokensCreate, OpAuthTokensList, OpAuthTokensRevoke,
	OpSyncTokensCreate, OpSyncTokensList, OpSyncTokensRevoke,
	OpMachinesList, OpMachinesRevoke,
	OpPatchesUpload, OpPatchesList, OpSyncRun, OpReportsList,
	OpLogout, OpSessionsRevoke,
}

// RevokeSessionsRequest is the body of POST /v1/admin/revocations: exactly
// one of ID (a macaroon's revocation id, as logged in macaroon_revoked
// events), User (every login of that user) and All (everyone's logins).
// Before (RFC 3339, default now, never in the future) is the cut-off for
// User and All: logins issued before it are refused.
type RevokeSessionsRequest struct {
	ID     string `json:"id,omitempty"`
	User   string `json:"user,omitempty"`
	All    bool   `json:"all,omitempty"`
	Before string `json:"before,omitempty"`
}

// RevokeSessionsResponse answers POST /v1/admin/revocations.
type RevokeSessionsResponse struct {
	Scope  string     `json:"scope"` // "id", "user" or "all"
	Before *time.Time `json:"before,omitempty"`
}

// Error is the body of every error answer (internal/httperr writes it, for
// the server and for the auth, token and macaroon middlewares alike), except
// the discharge-required answer of PUT /v1/client/{machine}, which is
// httpbakery's error JSON so that stock bakery clients understand it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

// IdentityLoginResponse answers POST /v1/admin/login/identity. Macaroon
// (bakery JSON form) has a third-party caveat for IdentityURL: get it
// discharged there (macaroon.DischargeClient.DischargeAll, authenticating
// to the identity service), then send the primary and its discharge in the
// "Macaroons" header (macaroon.EncodeSlice). The session ends at Expires
// or when the identity discharge expires, whichever is first.
type IdentityLoginResponse struct {
	Macaroon    any       `json:"macaroon"`
	IdentityURL string    `json:"identity_url"`
	Expires     time.Time `json:"expires"`
}

// LoginResponse answers POST /v1/admin/login. Macaroon is the bakery JSON
// form of the macaroon slice; send it back base64-encoded in
// "Authorization: Macaroon <base64>" or in the "Macaroons" header.
type LoginResponse struct {
	User     string    `json:"user"`
	Expires  time.Time `json:"expires"`
	Macaroon any       `json:"macaroon"`
	// Header is the ready-made value for the Authorization header.
	Header string `json:"authorization"`
	// SessionID names this macaroon in POST /v1/admin/revocations
	// ({"id": ...}); it is not a credential.
	SessionID string `json:"session_id"`
}

// IssueTokenRequest is the body of POST /v1/admin/auth-tokens and
// /v1/admin/sync-tokens.
type IssueTokenRequest struct {
	Name string `json:"name"`
	// Uses applies to registration tokens: 1 or more, or -1 for
	// unlimited; 0 means 1.
	Uses int `json:"uses,omitempty"`
	// ValidFor is a Go duration ("24h"); empty means no expiry.
	ValidFor string `json:"valid_for,omitempty"`
}

// TokenInfo describes a token; listings never include its value.
type TokenInfo struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Tier       string     `json:"tier"`
	Name       string     `json:"name,omitempty"`
	Machine    string     `json:"machine,omitempty"`
	Uses       *int       `json:"uses,omitempty"`
	UsesLeft   *int       `json:"uses_left,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	Created    time.Time  `json:"created"`
	LastUsed   *time.Time `json:"last_used,omitempty"`
	Revoked    bool       `json:"revoked"`
	// Issuer names the external credential a machine was admitted on
	// (the entitlement service); empty for registration tokens.
	Issuer string `json:"issuer,omitempty"`
}

// IssuedToken answers a token creation: the only time the value is shown.
type IssuedToken struct {
	Token string `json:"token"`
	TokenInfo
}

// TokenList answers the listing endpoints. GET /v1/admin/machines is
// paged: ?limit= (1..1000, default 100) and ?after=<next of the previous
// page>; Next is empty on the last page.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
	Next   string      `json:"next,omitempty"`
}

// ReleaseRequest is the body of POST /v1/admin/machines/release: the
// machine ID whose live machine token is revoked so that the machine can
// register again (a machine that lost its state, or a clone given a new
// machine ID).
type ReleaseRequest struct {
	Machine string `json:"machine"`
}

// Registration headers (PUT /v1/client/{machine}).
const (
	// HeaderCurrentToken carries the machine's current machine token when
	// it re-registers: proof that it holds the name (a rotation).
	HeaderCurrentToken = "X-Current-Machine-Token"
	// HeaderIdempotencyKey carries a random key (a version 4 UUID) the
	// client keeps until it has its machine token: repeating a registration
	// whose answer was lost with the same key gets a working token.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// RegisterResponse answers PUT /v1/client/{machine}.
type RegisterResponse struct {
	Machine      string `json:"machine"`
	Tier         string `json:"tier"`
	MachineToken string `json:"machine_token"`
}

// Patch is one entry of a patch listing.
type Patch struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	URL      string `json:"url"`
	Version  string `json:"version"`
	Kernel   string `json:"kernel"`
}

// PatchList answers GET /v1/client/{machine}/patches and GET
// /v1/sync/patches.
type PatchList struct {
	Patches []Patch `json:"patches"`
}

// UploadResponse answers POST /v1/admin/patches.
type UploadResponse struct {
	Patch
	Signer string `json:"signer"`
}

// SyncResponse answers POST /v1/admin/sync.
type SyncResponse struct {
	Fetched int `json:"fetched"`
	Known   int `json:"known"`
	// Refused counts entries skipped (unsafe name, URL outside the
	// allowed origins, failed verification, over a bound); each is logged
	// as a sync_patch_refused event with its reason.
	Refused int `json:"refused"`
}

// StoredReport is the last report of a machine, as GET /v1/admin/reports
// lists it.
type StoredReport struct {
	Machine  string          `json:"machine"`
	Received time.Time       `json:"received"`
	Report   json.RawMessage `json:"report"`
}
