// Package report defines the report a live-patch client sends about its
// machine, collects what goes into it, and pseudonymises the machine ID.
//
// machine-id(5) says the machine ID is confidential and must never go onto
// the network. A client therefore sends only a HashedID: HMAC-SHA256 of the
// machine ID under a deployment key, labelled with the key's ID so that the
// server can rotate keys and still recognise hashes made under the previous
// ones. The Report type has no field that can hold a raw machine ID.
//
// Most clients want ReadMachineID, NewHasher and Collect:
//
//	id, err := report.ReadMachineID("") // /etc/machine-id
//	h, err := report.NewHasher(key)
//	r, err := report.Collect(ctx)
//	r.MachineID = h.Hash(id)
//	r.PatchState = report.PatchApplied
//	body, err := json.Marshal(r)
//
// Most servers want Decode, which bounds and validates everything a client
// sends (a refusal is a *FieldError naming the field, matching
// ErrInvalidReport), and Hasher.Recognize to accept hashes made under the
// current key and the keys given to WithPreviousKeys only:
//
//	h, err := report.NewHasher(current, report.WithPreviousKeys(previous...))
//	r, err := report.Decode(body)
//	isCurrent, err := h.Recognize(r.MachineID)
//
// AppSpecificID derives the same application-specific ID as systemd's
// sd_id128_get_machine_app_specific(3), for applications that need an ID
// stable per machine and per application without a shared key.
package report
