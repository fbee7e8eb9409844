package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Errors about machine IDs and app IDs.
var (
	// ErrInvalidMachineID means a machine ID is not in the machine-id(5)
	// format: 32 hexadecimal characters, optionally followed by one newline,
	// and not all zero. The wrapping error says what was wrong.
	ErrInvalidMachineID = errors.New("report: invalid machine ID")

	// ErrZeroAppID means an all-zero app ID was given to AppSpecificID.
	// systemd answers such a request with the raw machine ID, which is
	// exactly what must never leave the machine.
	ErrZeroAppID = errors.New("report: all-zero app ID")
)

// Default locations of the machine ID, in the order systemd and D-Bus use.
const (
	etcMachineID  = "/etc/machine-id"
	dbusMachineID = "/var/lib/dbus/machine-id"
)

// machineIDFiles is where ReadMachineID("") looks, first and fallback; a
// variable only so that tests can point it at files they write.
var machineIDFiles = [2]string{etcMachineID, dbusMachineID}

// maxMachineIDFile bounds what ReadMachineID reads: a valid file has 33
// bytes, so anything larger is refused without reading it whole.
const maxMachineIDFile = 64

// ParseMachineID parses a machine ID in the machine-id(5) format: exactly 32
// hexadecimal characters (either case), optionally followed by a single
// newline. It refuses the empty string, "uninitialized" (a machine in its
// first boot), the all-zero ID, the dashed UUID form, other lengths and any
// trailing bytes, with errors wrapping ErrInvalidMachineID.
func ParseMachineID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	switch {
	case s == "":
		return id, fmt.Errorf("%w: empty", ErrInvalidMachineID)
	case s == "uninitialized":
		return id, fmt.Errorf("%w: %q (the machine has not completed its first boot)", ErrInvalidMachineID, s)
	case len(s) != 32:
		// The length is safe to echo; the content is not: it may be a
		// real machine ID with a typo.
		return id, fmt.Errorf("%w: %d characters, want 32 hexadecimal characters", ErrInvalidMachineID, len(s))
	}
	var nonzero byte
	for i := range id {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, fmt.Errorf("%w: non-hexadecimal character at offset %d", ErrInvalidMachineID, 2*i+boolInt(ok1))
		}
		id[i] = hi<<4 | lo
		nonzero |= id[i]
	}
	if nonzero == 0 {
		return [16]byte{}, fmt.Errorf("%w: all zero", ErrInvalidMachineID)
	}
	return id, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ReadMachineID reads and parses the machine ID in the file at path. An empty
// path means /etc/machine-id, or /var/lib/dbus/machine-id when the former
// does not exist. An /etc/machine-id that exists but is invalid (for example
// "uninitialized") is an error, not a reason to fall back: the D-Bus copy
// may belong to another installation.
//
// The result is confidential (machine-id(5)): hash it with a Hasher or derive
// an AppSpecificID before it leaves the process.
func ReadMachineID(path string) ([16]byte, error) {
	if path != "" {
		return readMachineIDFile(path)
	}
	id, err := readMachineIDFile(machineIDFiles[0])
	if errors.Is(err, fs.ErrNotExist) {
		return readMachineIDFile(machineIDFiles[1])
	}
	return id, err
}

func readMachineIDFile(path string) ([16]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [16]byte{}, fmt.Errorf("report: read machine ID: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMachineIDFile+1))
	if err != nil {
		return [16]byte{}, fmt.Errorf("report: read machine ID from %s: %w", path, err)
	}
	if len(b) > maxMachineIDFile {
		return [16]byte{}, fmt.Errorf("report: machine ID file %s: %w: longer than %d bytes", path, ErrInvalidMachineID, maxMachineIDFile)
	}
	id, err := ParseMachineID(string(b))
	if err != nil {
		return [16]byte{}, fmt.Errorf("report: machine ID file %s: %w", path, err)
	}
	return id, nil
}

// AppSpecificID derives the application-specific ID of a machine exactly as
// sd_id128_get_machine_app_specific(3) and `systemd-id128 machine-id
// --app-specific=APPID` do: HMAC-SHA256 keyed with the 16 machine-ID bytes
// over the 16 app-ID bytes, truncated to 16 bytes, with the UUID version 4
// and variant bits set.
//
// The derived ID does not reveal the machine ID, but anyone who knows the
// app ID and the machine ID can recompute it; to pseudonymise machines
// towards a server use a Hasher, whose key the server controls.
//
// An app ID in UUID form converts directly: uuid.MustParse(s) from
// github.com/google/uuid is a [16]byte.
func AppSpecificID(machineID, appID [16]byte) ([16]byte, error) {
	if appID == ([16]byte{}) {
		return [16]byte{}, ErrZeroAppID
	}
	if machineID == ([16]byte{}) {
		return [16]byte{}, fmt.Errorf("%w: all zero", ErrInvalidMachineID)
	}
	m := hmac.New(sha256.New, machineID[:])
	m.Write(appID[:])
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	var out [16]byte
	copy(out[:], sum[:16])
	out[6] = out[6]&0x0f | 0x40 // version 4
	out[8] = out[8]&0x3f | 0x80 // variant RFC 4122
	return out, nil
}
