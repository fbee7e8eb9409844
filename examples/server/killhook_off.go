//go:build !lpsec_faults

package main

import "github.com/lpsec/lpsec/examples/internal/server"

// killHook is the file store's crash-test hook; it exists only in builds
// with -tags lpsec_faults (killhook_on.go), so that no environment variable
// can make a production server kill itself.
func killHook(*server.Options) error { return nil }
