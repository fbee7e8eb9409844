package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/server"
)

// TestFileStoreKilledAtEveryStep kills the real server binary (SIGKILL,
// sent by the process to itself through LPSEC_TEST_SERVER_KILL_AT) after
// each step of an upload of v11 over v10 under the same name, restarts it
// on the same --state-dir and checks that the listing's SHA-256 is the
// SHA-256 of the bytes served for every listed patch, and that the patch
// is v10 or v11 whole: v10 until the entry's commit (its rename), v11
// from it on. Issue 19 saw, before the file store was made crash-safe, a
// kill between moving the tarball and rewriting the index list v10's
// SHA-256 and serve v11's bytes.
func TestFileStoreKilledAtEveryStep(t *testing.T) {
	t.Parallel()
	f := getFixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pkg := func(version string) []byte {
		out := filepath.Join(dir, "v"+version+".tar.gz")
		args := []string{"package", "--kernel", kernel, "--flavour", flavour, "--version", version, f.module, "-o", out}
		if b, err := exec.Command(exe(t, "patchtool"), args...).CombinedOutput(); err != nil {
			t.Fatalf("patchtool %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v10, v11 := pkg("10"), pkg("11")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	const name = "livepatch-crash-x86_64.tar.gz"
	env := []string{"LPSEC_SERVER_ADMIN_USERS=" + f.userSpec}
	upload := func(admin *client.Admin, data []byte) error {
		return admin.Do(ctx, http.MethodPost, "/v1/admin/patches?filename="+name,
			http.Header{"Content-Type": {"application/octet-stream"}}, data, nil)
	}
	// check restarts the server on state and returns the version it
	// serves, after checking listing against bytes.
	check := func(t *testing.T, state string) string {
		t.Helper()
		srv := start(t, env, "server", serverArgs(f, state)...)
		defer srv.stop(t)
		admin := adminFor(t, ctx, srv, f)
		var list api.PatchList
		if err := admin.Do(ctx, http.MethodGet, "/v1/admin/patches", nil, nil, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Patches) != 1 || list.Patches[0].Filename != name {
			t.Fatalf("listed %+v, want %s alone", list.Patches, name)
		}
		for _, p := range list.Patches {
			resp, err := admin.HTTP().Get(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", p.URL, resp.StatusCode, err)
			}
			if got := sum(body); got != p.SHA256 {
				t.Fatalf("%s: listed SHA-256 %s, served bytes hash to %s", p.Filename, p.SHA256, got)
			}
		}
		switch list.Patches[0].SHA256 {
		case sum(v10):
			return "10"
		case sum(v11):
			return "11"
		}
		t.Fatalf("serves neither v10 nor v11: %s", list.Patches[0].SHA256)
		return ""
	}
	committed := false
	for _, step := range append(append([]string{}, server.PutSteps...), "none") {
		if step == "entry-renamed" || step == "none" {
			committed = true
		}
		want := "10"
		if committed {
			want = "11"
		}
		t.Run(step, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "s")
			srv := start(t, env, "server", serverArgs(f, state)...)
			if err := upload(adminFor(t, ctx, srv, f), v10); err != nil {
				t.Fatal(err)
			}
			srv.stop(t)
			kenv := env
			if step != "none" {
				kenv = append(kenv, "LPSEC_TEST_SERVER_KILL_AT="+step)
			}
			srv = start(t, kenv, "server", serverArgs(f, state)...)
			err := upload(adminFor(t, ctx, srv, f), v11)
			if step == "none" {
				if err != nil {
					t.Fatal(err)
				}
				srv.stop(t)
			} else {
				if err == nil {
					t.Fatal("the upload was answered: the server was not killed")
				}
				select {
				case <-srv.done:
				case <-time.After(30 * time.Second):
					t.Fatal("the server did not die")
				}
				if ws, ok := srv.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("server ended with %v, want SIGKILL", srv.cmd.ProcessState)
				}
			}
			if got := check(t, state); got != want {
				t.Errorf("after a kill at %s the server serves v%s, want v%s", step, got, want)
			}
		})
	}
}
