package report

import (
	"errors"
	"fmt"
)

// ErrInvalidPatchState means a patch state is not one of the nine names
// PatchState knows. Parsing is exact: no other case, no spaces.
var ErrInvalidPatchState = errors.New("report: invalid patch state")

// PatchState is the state of live patching on a machine. The zero value is
// PatchUnknown.
type PatchState uint8

// The patch states, with their text (and JSON) names.
const (
	PatchUnknown               PatchState = iota // "unknown"
	PatchApplied                                 // "applied"
	PatchApplyFailed                             // "apply-failed"
	PatchUnapplied                               // "unapplied"
	PatchNeedsCheck                              // "needs-check"
	PatchNothingToApply                          // "nothing-to-apply"
	PatchCheckFailed                             // "check-failed"
	PatchAppliedWithBug                          // "applied-with-bug"
	PatchKernelUpgradeRequired                   // "kernel-upgrade-required"
	numPatchStates
)

var patchStateNames = [numPatchStates]string{
	PatchUnknown:               "unknown",
	PatchApplied:               "applied",
	PatchApplyFailed:           "apply-failed",
	PatchUnapplied:             "unapplied",
	PatchNeedsCheck:            "needs-check",
	PatchNothingToApply:        "nothing-to-apply",
	PatchCheckFailed:           "check-failed",
	PatchAppliedWithBug:        "applied-with-bug",
	PatchKernelUpgradeRequired: "kernel-upgrade-required",
}

// ParsePatchState returns the state named s, or an error wrapping
// ErrInvalidPatchState.
func ParsePatchState(s string) (PatchState, error) {
	for i, name := range patchStateNames {
		if s == name {
			return PatchState(i), nil
		}
	}
	if len(s) > 32 {
		return 0, fmt.Errorf("%w: %d bytes long", ErrInvalidPatchState, len(s))
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidPatchState, s)
}

// String returns the state's name, or "PatchState(N)" for a value outside
// the defined states.
func (p PatchState) String() string {
	if p < numPatchStates {
		return patchStateNames[p]
	}
	return fmt.Sprintf("PatchState(%d)", uint8(p))
}

// MarshalText returns the state's name; an undefined state is an error.
func (p PatchState) MarshalText() ([]byte, error) {
	if p >= numPatchStates {
		return nil, fmt.Errorf("%w: %d", ErrInvalidPatchState, uint8(p))
	}
	return []byte(patchStateNames[p]), nil
}

// UnmarshalText parses a state name as ParsePatchState does.
func (p *PatchState) UnmarshalText(b []byte) error {
	v, err := ParsePatchState(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
