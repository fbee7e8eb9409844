package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/lpsec/lpsec/patchverify"
)

// hostileServer speaks the client API from inside the test and answers
// what an attacker who controls a server or mirror would: validly signed
// patches for the wrong kernel or older versions, escape sequences in its
// messages, a patch sent one byte at a time.
type hostileServer struct {
	srv      *httptest.Server
	caFile   string
	mu       sync.Mutex
	patches  []api.Patch
	files    map[string][]byte
	trickle  bool   // send patch bodies one byte every 50 ms
	errCode  string // answer the listing with 403 and this code
	errMsg   string
	cat      []byte       // signed catalogue served at /v1/catalogue
	gets     atomic.Int64 // patch downloads started
	trickled atomic.Int64 // bytes sent while trickling
}

func newHostileServer(t *testing.T) *hostileServer {
	h := &hostileServer{files: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/client/{machine}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.RegisterResponse{Machine: r.PathValue("machine"), Tier: "stable", MachineToken: "machine-token"})
	})
	mux.HandleFunc("GET /v1/client/{machine}/patches", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.errCode != "" {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(api.Error{Code: h.errCode, Message: h.errMsg})
			return
		}
		json.NewEncoder(w).Encode(api.PatchList{Patches: h.patches})
	})
	mux.HandleFunc("GET /v1/catalogue", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Write(h.cat)
	})
	mux.HandleFunc("GET /p/{name}", func(w http.ResponseWriter, r *http.Request) {
		h.gets.Add(1)
		h.mu.Lock()
		data, trickle := h.files[r.PathValue("name")], h.trickle
		h.mu.Unlock()
		if !trickle {
			w.Write(data)
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := range data {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			w.Write(data[i : i+1])
			w.(http.Flusher).Flush()
			h.trickled.Add(1)
		}
	})
	h.srv = httptest.NewUnstartedServer(mux)
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-authority handshake is expected
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	h.caFile = filepath.Join(t.TempDir(), "hostile-ca.pem")
	if err := os.WriteFile(h.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// offer makes the server list exactly these patches.
func (h *hostileServer) offer(ps ...[]byte) []api.Patch {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.patches = nil
	for i, data := range ps {
		s := sha256.Sum256(data)
		name := hex.EncodeToString(s[:8]) + ".tar.gz"
		h.files[name] = data
		h.patches = append(h.patches, api.Patch{Filename: name, SHA256: hex.EncodeToString(s[:]), URL: h.srv.URL + "/p/" + name, Version: string(rune('1' + i)), Kernel: machineKernel})
	}
	return h.patches
}

func signedPatch(t *testing.T, signer *pki.Pair, meta patchverify.Metadata, module []byte) []byte {
	t.Helper()
	signed, err := patchverify.SignModule(module, signer.Key, signer.Cert)
	if err != nil {
		t.Fatal(err)
	}
	// The tarball is built by hand where the metadata must lie (BuildPatch
	// refuses that).
	var buf bytes.Buffer
	if err := patchverify.BuildPatch(&buf, meta, signed); err == nil {
		return buf.Bytes()
	}
	metaJSON, _ := json.Marshal(meta)
	return tarGz(t, tarEntry{"metadata.json", metaJSON}, tarEntry{meta.Module, signed})
}

type tarEntry struct {
	name string
	data []byte
}

func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClientAgainstHostileServer: each attack of issue 16 over the wire,
// with the real client binary.
func TestClientAgainstHostileServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vendor, err := pki.NewCodeSigning("hostile test vendor", 3072, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signCert := filepath.Join(dir, "signing-cert.pem")
	if err := os.WriteFile(signCert, pki.CertPEM(vendor.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHostileServer(t)
	state := filepath.Join(dir, "state")
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o700)
	env := []string{"TMPDIR=" + tmp}
	base := []string{"--state-dir", state, "--machine-id-file", filepath.Join(dir, "machine-id"), "--kernel", machineKernel}
	os.WriteFile(filepath.Join(dir, "machine-id"), []byte(randHex(16)+"\n"), 0o644)
	// refresh carries neither --remote-server nor --ca-certs: enable
	// remembered both.
	refresh := func(extra ...string) result {
		return run(t, env, "client", append(append([]string{"refresh", "--signing-cert", signCert}, base...), extra...)...)
	}
	lp := func(version int) []byte {
		return signedPatch(t, vendor, patchverify.Metadata{Kernel: kernel, Flavour: flavour, Version: version, Architecture: "x86_64", Module: "lp.ko"},
			kmodtest.Module("livepatch=Y", "name=lp", "vermagic="+machineKernel+" SMP preempt mod_unload "))
	}
	v1, v2 := lp(1), lp(2)

	// Unknown authority: the error names --ca-certs.
	r := run(t, env, "client", append([]string{"enable", "--remote-server", h.srv.URL, "reg-token"}, base...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "certificate signed by unknown authority") || !strings.Contains(r.stderr, "--ca-certs") {
		t.Fatalf("enable without the CA: exit %d, %q", r.code, r.stderr)
	}
	mustRun(t, env, "client", append([]string{"enable", "--remote-server", h.srv.URL, "--ca-certs", h.caFile, "reg-token"}, base...)...)

	h.offer(v2)
	if r := refresh(); r.code != 0 || !strings.Contains(r.stdout, "version 2") {
		t.Fatalf("refresh v2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	applied, err := os.ReadFile(filepath.Join(state, "applied.json"))
	if err != nil {
		t.Fatal(err)
	}
	placed := func() []string {
		ents, _ := os.ReadDir(filepath.Join(state, "patches"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	before := placed()
	unchanged := func(t *testing.T) {
		t.Helper()
		if got, _ := os.ReadFile(filepath.Join(state, "applied.json")); !bytes.Equal(got, applied) {
			t.Error("applied.json changed")
		}
		if got := placed(); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Errorf("placed patches %v, want %v", got, before)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("temporary files left behind: %v", ents)
		}
	}

	t.Run("same_patch_not_downloaded_again", func(t *testing.T) {
		n := h.gets.Load()
		r := refresh()
		if r.code != 0 || !strings.Contains(r.stdout, "up to date") || h.gets.Load() != n {
			t.Fatalf("exit %d, %d downloads, %q", r.code, h.gets.Load()-n, r.stdout)
		}
		unchanged(t)
	})
	t.Run("rollback_to_v1", func(t *testing.T) {
		h.offer(v1)
		r := refresh()
		if r.code != 1 || !strings.Contains(r.stderr, "patch version is not newer than the applied one: lp version 1 for "+machineKernel+", version 2 is applied") {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
		unchanged(t)
	})
	t.Run("other_kernel", func(t *testing.T) {
		h.offer(signedPatch(t, vendor, patchverify.Metadata{Kernel: "5.4.0", Version: 99, Module: "lp.ko"},
			kmodtest.Module("livepatch=Y", "name=lp", "vermagic=5.4.0 SMP mod_unload ")))
		r := refresh()
		if r.code != 1 || !strings.Contains(r.stderr, `patch is for another kernel: patch is for "5.4.0", this kernel is "`+machineKernel+`"`) {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
		unchanged(t)
	})
	t.Run("not_a_live_patch", func(t *testing.T) {
		// Validly signed, for this kernel, newer: but an ordinary module.
		h.offer(signedPatch(t, vendor, patchverify.Metadata{Kernel: kernel, Flavour: flavour, Version: 9, Module: "lp.ko"},
			kmodtest.Module("name=lp", "vermagic="+machineKernel+" SMP mod_unload ")))
		r := refresh()
		if r.code != 1 || !strings.Contains(r.stderr, "module is not a live patch: lp has no livepatch=Y") {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
		unchanged(t)
	})
	t.Run("metadata_lies_about_kernel", func(t *testing.T) {
		// The "version 99 for 5.4.0" on a module built for 6.1.
		h.offer(signedPatch(t, vendor, patchverify.Metadata{Kernel: "5.4.0", Version: 99, Module: "lp.ko"},
			kmodtest.Module("name=lp", "vermagic="+machineKernel+" SMP mod_unload ")))
		r := refresh()
		if r.code != 1 || !strings.Contains(r.stderr, `disagrees with the signed module: metadata is for kernel "5.4.0"`) {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
		unchanged(t)
	})
	t.Run("escape_sequences_escaped", func(t *testing.T) {
		h.mu.Lock()
		h.errCode, h.errMsg = "denied\x1b[2J", "evil\x1b]0;pwned\x07 \u202etxt.exe\r"
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.errCode = ""; h.mu.Unlock() }()
		r := refresh()
		if r.code != 1 || strings.ContainsAny(r.stderr, "\x1b\x07\r\u202e") || !strings.Contains(r.stderr, `denied\x1b[2J: evil\x1b]0;pwned\x07 \u202etxt.exe\x0d`) {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
	})
	t.Run("byte_at_a_time", func(t *testing.T) {
		h.mu.Lock()
		h.trickle = true
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.trickle = false; h.mu.Unlock() }()
		h.offer(lp(3))
		start := time.Now()
		r := refresh("--timeout", "3s")
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, "gave up after --timeout 3s") {
			t.Fatalf("exit %d after %v, %q", r.code, took, r.stderr)
		}
		if took > 15*time.Second {
			t.Errorf("client took %v against a 3s deadline", took)
		}
		if strings.Contains(r.stdout, "\r") || strings.Contains(r.stdout, "ETA") {
			t.Errorf("progress shown on a stdout that is not a terminal: %q", r.stdout)
		}
		if h.trickled.Load() == 0 {
			t.Error("the server sent nothing: the deadline was not what stopped the client")
		}
		unchanged(t)
	})
	t.Run("catalogue", func(t *testing.T) {
		other, err := pki.NewCodeSigning("not the vendor", 3072, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v4, v5 := lp(4), lp(5)
		entry := func(data []byte, version int) patchverify.CatalogueEntry {
			s := sha256.Sum256(data)
			return patchverify.CatalogueEntry{Filename: "p", SHA256: hex.EncodeToString(s[:]), Kernel: machineKernel, Version: version}
		}
		serve := func(signer *pki.Pair, version int64, expires time.Time, entries ...patchverify.CatalogueEntry) {
			b, err := patchverify.SignCatalogue(patchverify.Catalogue{Version: version, Expires: expires, Patches: entries}, signer.Key, signer.Cert)
			if err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			h.cat = b
			h.mu.Unlock()
		}
		later := time.Now().Add(time.Hour)
		h.offer(v4)
		serve(vendor, 5, later, entry(v4, 4))
		if r := refresh("--require-catalogue"); r.code != 0 || !strings.Contains(r.stdout, "version 4") {
			t.Fatalf("listed patch: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		applied, _ = os.ReadFile(filepath.Join(state, "applied.json"))
		before = placed()
		h.offer(v5)
		for _, tc := range []struct {
			name string
			set  func()
			why  string
		}{
			{"older_than_seen", func() { serve(vendor, 4, later, entry(v5, 5)) }, "patch catalogue older than one already seen: version 4, version 5 was seen"},
			{"expired", func() { serve(vendor, 6, time.Now().Add(-time.Minute), entry(v5, 5)) }, "patch catalogue expired: version 6"},
			{"wrong_signer", func() { serve(other, 7, later, entry(v5, 5)) }, "signer is not a pinned certificate"},
			{"unlisted", func() { serve(vendor, 8, later, entry(v4, 4)) }, "patch not listed in the catalogue"},
			{"listed_for_other_version", func() { serve(vendor, 9, later, entry(v5, 6)) }, "catalogue version 9 lists"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.set()
				r := refresh("--require-catalogue")
				if r.code != 1 || !strings.Contains(r.stderr, tc.why) {
					t.Fatalf("exit %d, %q", r.code, r.stderr)
				}
				unchanged(t)
			})
		}
	})
	t.Run("override_rollback", func(t *testing.T) {
		h.offer(v1)
		r := refresh("--allow-rollback", "--log-level", "warn")
		if r.code != 0 || !strings.Contains(r.stderr, `"event":"patch_rollback_allowed"`) {
			t.Fatalf("exit %d, %q", r.code, r.stderr)
		}
	})
}
