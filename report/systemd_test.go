package report

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lpsec/lpsec/internal/testenv"
)

// uuidForm writes 32 hex digits as 8-4-4-4-12, the other form
// systemd-id128 accepts for --app-specific.
func uuidForm(h string) string {
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var peerAppIDs = []string{
	"e0e5fbdd5b7a4bbcbb3c49b01ab0b7c5",
	"00000000000000000000000000000001",
	"FFEEDDCCBBAA99887766554433221100",
}

// TestAppSpecificIDSystemdThisMachine asks systemd-id128 for the app-specific
// IDs of this machine's own /etc/machine-id. The raw ID is never printed.
func TestAppSpecificIDSystemdThisMachine(t *testing.T) {
	prog := testenv.LookPath(t, "systemd-id128", "systemd")
	raw, err := os.ReadFile(etcMachineID)
	if err != nil {
		t.Skipf("skipped: this machine has no readable %s (%v); TestAppSpecificIDSystemdChosenMachineID covers the peer", etcMachineID, err)
	}
	mid, err := ParseMachineID(string(raw))
	if err != nil {
		t.Skipf("skipped: %s is not usable here: %v", etcMachineID, err)
	}
	for _, app := range peerAppIDs {
		for _, form := range []string{app, uuidForm(app)} {
			out, err := exec.Command(prog, "machine-id", "--app-specific="+form).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-id128 --app-specific=%s: %v: %s", form, err, out)
			}
			got, err := AppSpecificID(mid, mustHex16(t, app))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got[:]) != strings.TrimSpace(string(out)) {
				t.Errorf("app %s: AppSpecificID = %x, systemd-id128 = %s", form, got, out)
			}
		}
	}
}

// TestAppSpecificIDSystemdChosenMachineID runs systemd-id128 in a private
// mount namespace where a machine ID of the test's choosing is bind-mounted
// over /etc/machine-id, so the peer computes answers for IDs we know.
func TestAppSpecificIDSystemdChosenMachineID(t *testing.T) {
	prog := testenv.LookPath(t, "systemd-id128", "systemd")
	unshare := testenv.LookPath(t, "unshare", "util-linux")
	mount := testenv.LookPath(t, "mount", "mount")
	testenv.RequireRoot(t, "bind-mount a chosen machine ID over /etc/machine-id in a private mount namespace")
	if _, err := os.Stat(etcMachineID); err != nil {
		t.Skipf("skipped: %s does not exist here, so there is nothing to bind-mount over: %v", etcMachineID, err)
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("skipped: this root cannot create mount namespaces (container without CAP_SYS_ADMIN?): %v: %s", err, out)
	}

	for _, midHex := range []string{
		"0123456789abcdef0123456789abcdef",
		"8E5C7E1B2A9D4F3C8B6A5D4E3F2A1B0C", // upper case, as machine-id(5) permits readers to accept
		"00000000000000000000000000000001",
	} {
		file := filepath.Join(t.TempDir(), "machine-id")
		if err := os.WriteFile(file, []byte(midHex+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		mid, err := ParseMachineID(midHex)
		if err != nil {
			t.Fatal(err)
		}
		for _, app := range peerAppIDs {
			for _, form := range []string{app, uuidForm(app)} {
				// Arguments go through "$@", never through the shell text.
				cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
					`"$1" --bind "$2" /etc/machine-id && exec "$3" machine-id --app-specific="$4"`,
					"sh", mount, file, prog, form)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("machine %s app %s: %v: %s", midHex, form, err, out)
				}
				got, err := AppSpecificID(mid, mustHex16(t, app))
				if err != nil {
					t.Fatal(err)
				}
				if want := strings.TrimSpace(string(out)); hex.EncodeToString(got[:]) != want {
					t.Errorf("machine %s app %s: AppSpecificID = %x, systemd-id128 = %s", midHex, form, got, want)
				}
			}
		}
	}
}
