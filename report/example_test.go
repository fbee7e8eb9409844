package report_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/google/uuid"
	"github.com/lpsec/lpsec/report"
)

// exampleKey stands in for a deployment secret; real ones come from a
// secret store, never from source code.
func exampleKey(id string) report.Key {
	secret, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if id != "k1" {
		secret[0] = 0xff
	}
	k, err := report.NewKey(id, secret)
	if err != nil {
		log.Fatal(err)
	}
	return k
}

// A client hashes its machine ID under the deployment key before anything
// goes onto the network.
func ExampleHasher_Hash() {
	// Normally: machineID, err := report.ReadMachineID("")
	machineID, err := report.ParseMachineID("0123456789abcdef0123456789abcdef\n")
	if err != nil {
		log.Fatal(err)
	}
	h, err := report.NewHasher(exampleKey("k1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Hash(machineID))
	// Output:
	// k1:ea13de285f3ec9d0abb744e434edc82d20e8dbbce5016b361a69001f5583d5f3
}

// After a rotation the server hashes under the new key and still
// recognises IDs that clients made under the old one.
func ExampleHasher_Recognize() {
	oldKey, newKey := exampleKey("k1"), exampleKey("k2")
	h, err := report.NewHasher(newKey, report.WithPreviousKeys(oldKey))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{
		"k1:ea13de285f3ec9d0abb744e434edc82d20e8dbbce5016b361a69001f5583d5f3",
		"k0:ea13de285f3ec9d0abb744e434edc82d20e8dbbce5016b361a69001f5583d5f3",
	} {
		id, err := report.ParseHashedID(s)
		if err != nil {
			log.Fatal(err)
		}
		current, err := h.Recognize(id)
		switch {
		case errors.Is(err, report.ErrUnknownKey):
			fmt.Println(id.KeyID(), "refused: unknown key")
		case !current:
			fmt.Println(id.KeyID(), "accepted: previous key, ask the client to re-hash")
		default:
			fmt.Println(id.KeyID(), "accepted")
		}
	}
	fmt.Println(newKey) // keys print without their secret
	// Output:
	// k1 accepted: previous key, ask the client to re-hash
	// k0 refused: unknown key
	// report.Key{ID:k2, secret:REDACTED}
}

// The same app-specific ID as `systemd-id128 machine-id --app-specific=...`.
func ExampleAppSpecificID() {
	machineID, _ := report.ParseMachineID("0123456789abcdef0123456789abcdef")
	appID := uuid.MustParse("e0e5fbdd-5b7a-4bbc-bb3c-49b01ab0b7c5")
	id, err := report.AppSpecificID(machineID, appID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", id)
	// Output:
	// bbeb29f1419a4fccb20a54e08da9a0eb
}

// A client builds and encodes its report.
func ExampleCollect() {
	h, err := report.NewHasher(exampleKey("k1"))
	if err != nil {
		log.Fatal(err)
	}
	machineID, err := report.ParseMachineID("0123456789abcdef0123456789abcdef") // report.ReadMachineID("")
	if err != nil {
		log.Fatal(err)
	}
	r, err := report.Collect(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	r.MachineID = h.Hash(machineID)
	r.PatchState = report.PatchApplied
	r.PatchVersion = "98.1"
	r.ClientVersion = "10.8.1"
	body, err := json.Marshal(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bytes.Contains(body, []byte("0123456789abcdef")))
	// Output:
	// false
}

// A server decodes what a client sent, bounded and validated.
func ExampleDecode() {
	body := `{"architecture":"x86_64","kernel_version":"6.1.0-18-amd64",
	  "machine_id":"k1:ea13de285f3ec9d0abb744e434edc82d20e8dbbce5016b361a69001f5583d5f3",
	  "patch_state":"applied","patch_version":"98.1","last_check":"2026-11-22T09:30:00Z"}`
	r, err := report.Decode(strings.NewReader(body)) // times checked against time.Now
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.KernelVersion, r.PatchState, r.MachineID.KeyID())

	_, err = report.Decode(strings.NewReader(strings.Replace(body, `"applied"`, `"pwned"`, 1)))
	var fe *report.FieldError
	if errors.As(err, &fe) {
		fmt.Println(errors.Is(err, report.ErrInvalidReport), fe.Field)
	}
	fmt.Println(err)
	// Output:
	// 6.1.0-18-amd64 applied k1
	// true patch_state
	// report: invalid report: field patch_state: invalid patch state: "pwned"
}
