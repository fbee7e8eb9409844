//go:build !lpsec_faults

package server

import "net/http"

// afterRegisterCommit is a fault-injection point for tests built with
// -tags lpsec_faults (faults_on.go); here it does nothing.
func afterRegisterCommit(http.ResponseWriter) bool { return false }
