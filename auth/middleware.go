package auth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/lpsec/lpsec/internal/httperr"
)

type userKey struct{}

// UserFromContext returns the user [Basic.Middleware] authenticated for
// this request.
func UserFromContext(ctx context.Context) (string, bool) {
	u, ok := ctx.Value(userKey{}).(string)
	return u, ok
}

// Middleware lets through requests with valid Basic credentials, with the
// user in the request context ([UserFromContext]). Others get 401 and the
// challenge `Basic realm="<realm>", charset="UTF-8"`, with a body that
// never says why; 429 with Retry-After when throttled; 503 with
// Retry-After when too many checks are queued. The Authorization header is
// parsed by this package (RFC 7617): exactly one header, at most 4096
// bytes, strict base64, a non-empty user-id, UTF-8 without control
// characters.
//
// Refusals are written by [WithErrorWriter]'s writer, by default the JSON
// body every lpsec middleware writes, {"code":"…","error":"…"}, with these
// codes:
//
//	status  code          when
//	401     unauthorized  no, malformed or wrong credentials
//	429     throttled     too many failures from this client
//	503     overloaded    too many password checks queued
func (b *Basic) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientAddr(r, b.proxies)
		user, password, err := parseAuthorization(r.Header.Values("Authorization"))
		if errors.Is(err, errNoCredentials) {
			b.refuse(w, r, http.StatusUnauthorized, 0)
			return
		}
		var o outcome
		if err != nil {
			b.penalise(client)
			user = ""
			o = outcome{err: ErrInvalidCredentials, reason: "malformed_header"}
		} else {
			o = b.check(r.Context(), user, password, client)
		}
		b.log(r.Context(), user, client, o)
		switch {
		case o.err == nil:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
		case errors.Is(o.err, ErrThrottled):
			b.refuse(w, r, http.StatusTooManyRequests, o.retryAfter)
		case o.reason == "overloaded":
			b.refuse(w, r, http.StatusServiceUnavailable, o.retryAfter)
		default:
			b.refuse(w, r, http.StatusUnauthorized, 0)
		}
	})
}

func (b *Basic) refuse(w http.ResponseWriter, r *http.Request, status int, retryAfter time.Duration) {
	h := w.Header()
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", b.challenge())
	}
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	h.Set("Cache-Control", "no-store")
	code, msg := "unauthorized", "authentication required"
	switch status {
	case http.StatusTooManyRequests:
		code, msg = "throttled", "too many failed attempts; retry later"
	case http.StatusServiceUnavailable:
		code, msg = "overloaded", "too many logins in progress; retry later"
	}
	if b.errorWriter != nil {
		b.errorWriter(w, r, status, code, msg)
		return
	}
	httperr.Write(w, status, code, msg)
}

// ErrorWriter writes a refusal of [Basic.Middleware]: the status, a stable
// code and a message (see the table there). WWW-Authenticate and
// Retry-After are already set. It must not echo anything from the request.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)
