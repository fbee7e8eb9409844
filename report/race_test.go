//go:build race

package report

// raceEnabled skips allocation counts under the race detector, which makes
// sync.Pool drop items at random and so allocates where a normal build
// does not.
const raceEnabled = true
