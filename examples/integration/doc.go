// Package integration holds the end-to-end tests of the example binaries:
// it builds server, client, contracts, patchtool and admin once, runs them
// as separate processes talking TLS on loopback, and checks the live-patch
// story and its refusals over the wire, on the in-memory store and on
// PostgreSQL (two servers sharing one database). Single sign-on runs
// against a real OpenID provider, zitadel's example OP, started in the test
// process (internal/oidcop).
//
// Run with PostgreSQL: ./scripts/with-postgres.sh go test ./examples/integration/
package integration
