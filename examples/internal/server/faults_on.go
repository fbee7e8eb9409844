//go:build lpsec_faults

package server

import (
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Fault injection for the crash tests in examples/integration, which build
// the server with -tags lpsec_faults. A production build has no such code
// (faults_off.go). LPSEC_FAULT_AFTER_REGISTER picks what happens once,
// to the first registration the store commits in this process, before its
// answer is written:
//
//   - "kill": the process SIGKILLs itself (a crash after commit);
//   - "pause": it prints "test_hook_paused" on stderr, waits for SIGUSR1,
//     then answers 503 as if the commit's acknowledgement had been lost
//     (the test crashes the database meanwhile).
var faultOnce sync.Once

func afterRegisterCommit(w http.ResponseWriter) bool {
	mode := os.Getenv("LPSEC_FAULT_AFTER_REGISTER")
	if mode == "" {
		return false
	}
	fired := false
	faultOnce.Do(func() {
		switch mode {
		case "kill":
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL cannot be caught: never reached
		case "pause":
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			os.Stderr.WriteString("test_hook_paused\n")
			<-usr1
			signal.Stop(usr1)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "injected: commit acknowledgement lost")
			fired = true
		}
	})
	return fired
}
