// Package testenv decides whether tests that need an external program run.
//
// Outside CI a missing program skips the test with a message naming the
// Debian package that provides it. In CI (CI set to anything non-empty),
// .ci/run installs every such package, so a missing program is a failure:
// CI never skips a peer test silently.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI.
func InCI() bool { return os.Getenv("CI") != "" }

// LookPath returns the path of program, or skips (fails in CI) saying which
// Debian package provides it.
func LookPath(t testing.TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if _, statErr := os.Stat(program); statErr == nil {
		return program
	}
	if InCI() {
		t.Fatalf("%s not found: .ci/run must install the Debian package %s", program, debianPackage)
	}
	t.Skipf("skipped: %s not found; install the Debian package %s to run this test", program, debianPackage)
	return ""
}

// RequireRoot skips (never fails, even in CI) a test that needs root, saying why.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: needs root to %s", why)
	}
}
