//go:build lpsec_faults

package main

import (
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/server"
)

// killHookEnv names a step of the file store's upload (server.PutSteps)
// after which the process kills itself with SIGKILL: the crash tests
// (examples/integration) use it to stop the real binary between steps.
const killHookEnv = "LPSEC_TEST_SERVER_KILL_AT"

func killHook(o *server.Options) error {
	at := os.Getenv(killHookEnv)
	if at == "" {
		return nil
	}
	if !slices.Contains(server.PutSteps, at) {
		return cli.Usagef("%s=%q: want one of %s", killHookEnv, at, strings.Join(server.PutSteps, ", "))
	}
	o.PutStepHook = func(step string) {
		if step == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not delivered synchronously; nothing runs after it
		}
	}
	return nil
}
