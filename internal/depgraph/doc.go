// Package depgraph holds only a test: the module's import-graph rules,
// checked with `go list -deps` (see depgraph_test.go).
package depgraph
