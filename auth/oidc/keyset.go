package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is the provider's JWKS with the refresh policy go-oidc's
// RemoteKeySet lacks: an unknown key ID causes at most one fetch per
// refresh interval (a flood of forged key IDs cannot make the server hammer
// the provider), and keys older than the maximum age are not used when
// the provider cannot be reached (fail closed).
type keySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	interval time.Duration
	maxAge   time.Duration

	sem chan struct{} // one fetch at a time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch, successful or not
	fetches   int       // for tests
}

// verify checks the signature of a parsed compact JWS with the key its
// key ID names, refetching the key set when needed.
func (k *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, fresh, lastAttempt := k.cached()
	if fresh {
		if key, ok := find(keys, kid); ok {
			return verifyWith(jws, key)
		}
	}
	// Unknown key ID, or keys too old: refetch, at most once per interval.
	keys, fresh, err := k.refresh(ctx, lastAttempt)
	if key, ok := find(keys, kid); ok && fresh {
		return verifyWith(jws, key)
	}
	if fresh && (err == nil || errors.Is(err, errRateLimited)) {
		return nil, ErrUnknownKey
	}
	return nil, fmt.Errorf("%w: %v", ErrProviderUnavailable, err)
}

func verifyWith(jws *jose.JSONWebSignature, key jose.JSONWebKey) ([]byte, error) {
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, ErrSignature
	}
	return payload, nil
}

// find returns the key with this ID; a token without a key ID matches
// only a key set of one key.
func find(keys []jose.JSONWebKey, kid string) (jose.JSONWebKey, bool) {
	if kid == "" {
		if len(keys) == 1 {
			return keys[0], true
		}
		return jose.JSONWebKey{}, false
	}
	for _, key := range keys {
		if key.KeyID == kid {
			return key, true
		}
	}
	return jose.JSONWebKey{}, false
}

func (k *keySet) cached() (keys []jose.JSONWebKey, fresh bool, attempted time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.maxAge, k.attempted
}

var errRateLimited = errors.New("key set fetched less than the refresh interval ago")

// refresh fetches the key set unless another caller did since seen, or
// the last attempt is more recent than the refresh interval. It returns
// the keys it has and whether they are fresh.
func (k *keySet) refresh(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, bool, error) {
	select {
	case k.sem <- struct{}{}:
		defer func() { <-k.sem }()
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	k.mu.Lock()
	if !k.attempted.Equal(seen) || (!k.attempted.IsZero() && k.now().Sub(k.attempted) < k.interval) {
		// Someone fetched meanwhile, or too recently: use what we have.
		keys, fresh := k.keys, !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.maxAge
		var err error
		if k.attempted.Equal(seen) {
			err = errRateLimited
		}
		k.mu.Unlock()
		if err == nil && !fresh {
			err = errors.New("the last fetch of the key set failed")
		}
		return keys, fresh, err
	}
	k.attempted = k.now()
	k.fetches++
	k.mu.Unlock()

	keys, err := k.fetch(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys, k.fetched = keys, k.now()
	}
	return k.keys, !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.maxAge, err
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the key set: status %d", resp.StatusCode)
	}
	body, err := readLimited(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the key set: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding the key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		// A key this library cannot use (another kty, a symmetric key, an
		// encryption key) is skipped, not fatal: providers publish them.
		if json.Unmarshal(raw, &key) != nil || !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		if len(keys) == maxKeys {
			break
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set holds no usable signing key")
	}
	return keys, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("more than %d bytes", maxDocumentBytes)
	}
	return body, nil
}
