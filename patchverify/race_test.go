//go:build race

package patchverify

// raceEnabled lets the slowest bomb test shrink its bound under the race
// detector, which makes bzip2 decoding about ten times slower.
const raceEnabled = true
