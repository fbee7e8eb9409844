// Package bakerykey keeps a service's bakery key pair in a file. It is apart
// from examples/internal/pki so that patchtool, which needs pki, does not
// link the macaroon library.
package bakerykey

import (
	"errors"
	"os"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery"

	lpmac "github.com/lpsec/lpsec/macaroon"
)

// LoadOrCreate reads the bakery key pair in file, or makes one and
// writes it there (mode 0600) when the file does not exist yet, so a
// service keeps its key, and the macaroons and caveats made with it, across
// restarts.
func LoadOrCreate(file string) (*bakery.KeyPair, error) {
	data, err := os.ReadFile(file)
	if err == nil {
		return lpmac.ParseKeyPair(data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := lpmac.GenerateKey()
	if err != nil {
		return nil, err
	}
	js, err := lpmac.MarshalKeyPair(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, js, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}
