package macaroon_test

import (
	"testing"

	"github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/macaroon/internal/rootkeytest"
)

func TestRootKeyMemoryConformance(t *testing.T) {
	rootkeytest.Run(t, func(t *testing.T, opts ...macaroon.Option) macaroon.RootKeyStore {
		s, err := macaroon.NewMemoryRootKeyStore(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
