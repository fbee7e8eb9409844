//go:build !race

package patchverify

const raceEnabled = false
