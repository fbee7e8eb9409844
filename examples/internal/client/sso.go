package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/lpsec/lpsec/examples/internal/api"
)

// LoginBearer exchanges an OpenID Connect ID token for a macaroon (the
// server's --oidc-issuer login) and keeps it.
func (a *Admin) LoginBearer(ctx context.Context, idToken string) (*api.LoginResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL("/v1/admin/login"), http.NoBody)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+idToken)
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
