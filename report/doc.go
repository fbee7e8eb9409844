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
// current key and the keys given to WithPreviousKeys only, or
// Hasher.VerifyOwner, which also checks that the report is the sender's own
// (see "Reports only for oneself"):
//
//	h, err := report.NewHasher(current, report.WithPreviousKeys(previous...))
//	r, err := report.Decode(body)
//	isCurrent, err := h.Recognize(r.MachineID)
//
// # Reports only for oneself
//
// A server must accept a report only for the machine whose credential (a
// machine token) sent it, or any machine could file reports for another.
// The binding is checked without the server seeing a raw machine ID, and
// without stored state: the machine registers under its application-specific
// ID (AppSpecificID of the machine ID and the service's application ID,
// itself one-way), and hashes that same ID into its reports:
//
//	app, err := report.AppSpecificID(id, appID) // the name it registered
//	r.MachineID = h.Hash(app)
//
// The server recomputes the hash from the name the credential was issued
// for and compares in constant time:
//
//	err := h.VerifyOwner(registeredApp, r.MachineID) // ErrNotOwnMachine: answer 403
//
// A report carrying another machine's hashed ID, or a hash of the raw
// machine ID, is refused with ErrNotOwnMachine. Pinning the first hash a
// machine sends was the alternative; it was not chosen because it trusts
// the first report (a machine could claim another's hash before that
// machine first reports), needs a store, and breaks at every key rotation,
// where VerifyOwner checks a hash under whichever known key it names.
//
// AppSpecificID derives the same application-specific ID as systemd's
// sd_id128_get_machine_app_specific(3), for applications that need an ID
// stable per machine and per application without a shared key.
package report
