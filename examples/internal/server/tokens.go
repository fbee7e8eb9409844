package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/lpsec/lpsec/token"
	"github.com/lpsec/lpsec/token/tokenpg"
)

func (s *Server) openTokens(ctx context.Context) (token.Store, error) {
	if s.db == nil {
		return token.NewMemoryStore(token.WithLogger(s.log))
	}
	st, err := tokenpg.NewStore(s.db, token.WithLogger(s.log), token.WithStoreTimeout(s.opts.DatabaseTimeout))
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("token store: migrate: %w", err)
	}
	return st, nil
}

func (s *Server) tokenMiddleware() *token.Middleware {
	return s.tmw
}

// machineOnly authenticates the machine token (token.Middleware) and
// checks it belongs to the machine named in the path.
func (s *Server) machineOnly(next http.HandlerFunc) http.HandlerFunc {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := token.MachineFromContext(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "machine token required")
			return
		}
		if machine := r.PathValue("machine"); rec.Machine != machine {
			s.log.Warn("machine token used for another machine", "event", "machine_mismatch", "machine", machine)
			writeError(w, http.StatusForbidden, "forbidden", "this machine token belongs to another machine")
			return
		}
		next(w, r)
	})
	return s.tokenMiddleware().Machine(inner).ServeHTTP
}

func (s *Server) syncOnly(next http.HandlerFunc) http.HandlerFunc {
	return s.tokenMiddleware().Sync(next).ServeHTTP
}
