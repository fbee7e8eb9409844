// Package ident is how the examples name machines without putting the
// machine ID on the network (machine-id(5)): the machine name in URLs is
// the systemd app-specific ID for lpsec's application ID, and the machine
// ID in reports is hashed under the deployment's report key.
package ident

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/lpsec/lpsec/report"
)

// AppID is the application ID of the lpsec examples, for
// `systemd-id128 machine-id --app-specific=` (a random UUIDv4 chosen once).
const AppID = "7c2a3e4b5d6f41a8b9c0d1e2f3a4b5c6"

// ParseAppID parses 32 hex digits or a dashed UUID.
func ParseAppID(s string) ([16]byte, error) {
	var id [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return id, fmt.Errorf("app ID must be 32 hex digits or a UUID, got %d characters", len(s))
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("app ID is not hex")
	}
	return id, nil
}

// MachineName returns the name a machine goes by on the network: the
// app-specific ID of its machine ID, as 32 lowercase hex digits.
func MachineName(machineID [16]byte) (string, error) {
	as, err := AppSpecific(machineID)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(as[:]), nil
}

// AppSpecific is the app-specific ID of machineID for AppID. Reports
// carry it hashed under the report key (report.Hasher.VerifyOwner), so the
// server can check a report is its sender's own.
func AppSpecific(machineID [16]byte) ([16]byte, error) {
	app, err := ParseAppID(AppID)
	if err != nil {
		return [16]byte{}, err
	}
	return report.AppSpecificID(machineID, app)
}

// ParseMachineName is the inverse of MachineName's encoding: 32 lowercase
// hex digits to the app-specific ID.
func ParseMachineName(name string) ([16]byte, error) {
	var id [16]byte
	if len(name) != 32 || strings.ToLower(name) != name {
		return id, fmt.Errorf("machine name must be 32 lowercase hex digits")
	}
	if _, err := hex.Decode(id[:], []byte(name)); err != nil {
		return id, fmt.Errorf("machine name must be 32 lowercase hex digits")
	}
	return id, nil
}

// ParseReportKeys parses "ID:HEX[,ID:HEX...]" (current key first) into a
// Hasher. The key material never appears in errors.
func ParseReportKeys(spec string) (*report.Hasher, error) {
	var keys []report.Key
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, hx, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("report key %d: want ID:HEX", i+1)
		}
		secret, err := hex.DecodeString(strings.TrimSpace(hx))
		if err != nil {
			return nil, fmt.Errorf("report key %d (%s): secret is not hex", i+1, id)
		}
		k, err := report.NewKey(id, secret)
		clear(secret)
		if err != nil {
			return nil, fmt.Errorf("report key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no report key")
	}
	return report.NewHasher(keys[0], report.WithPreviousKeys(keys[1:]...))
}
