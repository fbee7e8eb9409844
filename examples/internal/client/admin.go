package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/tlsconfig"
)

// Admin is a small admin tool for the example server's API, used by the
// demo and the integration tests.
type Admin struct {
	base *url.URL
	http *http.Client
	// Authorization is the header value from Login ("Macaroon ...").
	Authorization string
}

// NewAdmin returns an Admin for the server at base, trusting caFile.
func NewAdmin(base, caFile string) (*Admin, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, err
	}
	pool, err := trustPool(caFile)
	if err != nil {
		return nil, err
	}
	hc, err := tlsconfig.HTTPClient(tlsconfig.WithRootCAs(pool), tlsconfig.WithRequireTLS())
	if err != nil {
		return nil, err
	}
	return &Admin{base: u, http: hc}, nil
}

// HTTP returns the admin's HTTP client (TLS, trusting the server's CA).
func (a *Admin) HTTP() *http.Client { return a.http }

// URL returns the server URL joined with path, which may carry a query.
func (a *Admin) URL(path string) string {
	p, q, _ := strings.Cut(path, "?")
	u := a.base.JoinPath(p)
	u.RawQuery = q
	return u.String()
}

// Do sends a request with the admin's macaroon (if any) and decodes the
// JSON answer into out; non-2xx answers are *ServerError.
func (a *Admin) Do(ctx context.Context, method, path string, hdr http.Header, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.URL(path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if a.Authorization != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", a.Authorization)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, 8<<20)); err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, buf.Bytes())
	}
	if out != nil && buf.Len() > 0 {
		return json.Unmarshal(buf.Bytes(), out)
	}
	return nil
}

// Login exchanges Basic credentials for a macaroon and keeps it.
func (a *Admin) Login(ctx context.Context, user, password string) (*api.LoginResponse, error) {
	return a.login(ctx, func(r *http.Request) { r.SetBasicAuth(user, password) })
}

// LoginBearer exchanges an OpenID Connect ID token for a macaroon (the
// server's --oidc-issuer login) and keeps it.
func (a *Admin) LoginBearer(ctx context.Context, idToken string) (*api.LoginResponse, error) {
	return a.login(ctx, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+idToken) })
}

// login is POST /v1/admin/login with the credential authorize sets.
func (a *Admin) login(ctx context.Context, authorize func(*http.Request)) (*api.LoginResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL("/v1/admin/login"), http.NoBody)
	if err != nil {
		return nil, err
	}
	authorize(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, 1<<20)); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp.StatusCode, buf.Bytes())
	}
	var lr api.LoginResponse
	if err := json.Unmarshal(buf.Bytes(), &lr); err != nil {
		return nil, err
	}
	a.Authorization = lr.Header
	return &lr, nil
}

// IssueToken creates a registration ("auth-tokens") or sync
// ("sync-tokens") token.
func (a *Admin) IssueToken(ctx context.Context, kind string, req api.IssueTokenRequest) (*api.IssuedToken, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out api.IssuedToken
	if err := a.Do(ctx, http.MethodPost, "/v1/admin/"+kind, http.Header{"Content-Type": {"application/json"}}, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTokens lists "auth-tokens", "sync-tokens" or "machines", following
// the machine list's pages.
func (a *Admin) ListTokens(ctx context.Context, kind string) ([]api.TokenInfo, error) {
	var all []api.TokenInfo
	path := "/v1/admin/" + kind
	for {
		var out api.TokenList
		if err := a.Do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Tokens...)
		if out.Next == "" {
			return all, nil
		}
		path = "/v1/admin/" + kind + "?limit=1000&after=" + url.QueryEscape(out.Next)
	}
}

// Release revokes a machine ID's live machine token so that it can
// register again.
func (a *Admin) Release(ctx context.Context, machine string) error {
	body, err := json.Marshal(api.ReleaseRequest{Machine: machine})
	if err != nil {
		return err
	}
	return a.Do(ctx, http.MethodPost, "/v1/admin/machines/release", http.Header{"Content-Type": {"application/json"}}, body, nil)
}

// Revoke revokes a token record of kind by ID.
func (a *Admin) Revoke(ctx context.Context, kind, id string) error {
	return a.Do(ctx, http.MethodDelete, "/v1/admin/"+kind+"/"+url.PathEscape(id), nil, nil, nil)
}

// Upload uploads a patch tarball.
func (a *Admin) Upload(ctx context.Context, tarball []byte) (*api.UploadResponse, error) {
	var out api.UploadResponse
	if err := a.Do(ctx, http.MethodPost, "/v1/admin/patches", http.Header{"Content-Type": {"application/octet-stream"}}, tarball, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sync asks the server to pull from its upstream now.
func (a *Admin) Sync(ctx context.Context) (*api.SyncResponse, error) {
	var out api.SyncResponse
	if err := a.Do(ctx, http.MethodPost, "/v1/admin/sync", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reports lists the machines' last reports.
func (a *Admin) Reports(ctx context.Context) ([]api.StoredReport, error) {
	var out struct {
		Reports []api.StoredReport `json:"reports"`
	}
	if err := a.Do(ctx, http.MethodGet, "/v1/admin/reports", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Reports, nil
}

// Get fetches path without credentials and returns the body.
func (a *Admin) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, 256<<20)); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return buf.Bytes(), nil
}

// trustPool is the system roots plus the CA certificates in caFile, if any.
func trustPool(caFile string) (*tlsconfig.Pool, error) {
	srcs := []tlsconfig.PoolSource{tlsconfig.SystemRoots()}
	if caFile != "" {
		srcs = append(srcs, tlsconfig.PEMFile(caFile))
	}
	return tlsconfig.NewPool(srcs...)
}
