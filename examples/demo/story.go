package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-macaroon-bakery/macaroon-bakery/v3/bakery/checkers"
	"gopkg.in/macaroon.v2"

	"github.com/lpsec/lpsec/auth"
	"github.com/lpsec/lpsec/examples/internal/api"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/contracts"
	"github.com/lpsec/lpsec/examples/internal/identity"
	"github.com/lpsec/lpsec/examples/internal/pki"
	"github.com/lpsec/lpsec/examples/internal/server"
	"github.com/lpsec/lpsec/internal/kmodtest"
	"github.com/lpsec/lpsec/internal/oidcop"
	lpmac "github.com/lpsec/lpsec/macaroon"
	"github.com/lpsec/lpsec/patchverify"
	"github.com/lpsec/lpsec/tlsconfig"
)

// demoModule is a tiny unsigned ELF kernel module (modinfo(8) reads it)
// whose .modinfo names the demo kernel and the patch version, as the
// metadata must; the demo signs it as a vendor would.
func demoModule(version int) []byte { return kmodtest.Livepatch(kernelRelease, flavour, version) }

const (
	kernelRelease = "6.1.0-18"
	flavour       = "amd64"
	machineKernel = kernelRelease + "-" + flavour
	adminUser     = "alice"
)

type demo struct {
	dir string
	out io.Writer
	log *slog.Logger
	st  *steps

	caFile, certFile, keyFile string
	signCert, signKey         string
	vendor, attacker          *pki.Pair
	adminPassword             string
	reportKey                 string
	contractToken             string

	contracts *contracts.Service
	idp       *oidcop.Provider
	idpCA     string
	identity  *identity.Service
	// identitySecret is the admin's bearer secret at the identity service.
	identitySecret string
	a, b           *server.Server
	closers        []func()
	secrets        []string // must never appear in the event log
	logFile        string
}

func (d *demo) cleanup() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }

// setup makes every key and certificate of the deployment.
func (d *demo) setup() (string, error) {
	ca, err := pki.NewCA("lpsec demo CA", time.Hour)
	if err != nil {
		return "", err
	}
	srv, err := pki.IssueServer(ca, []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		return "", err
	}
	d.caFile, d.certFile, d.keyFile = d.path("ca.pem"), d.path("tls.pem"), d.path("tls-key.pem")
	if err := ca.Write(d.caFile, d.path("ca-key.pem")); err != nil {
		return "", err
	}
	if err := srv.Write(d.certFile, d.keyFile); err != nil {
		return "", err
	}
	// The vendor's key is RSA-4096 as the kernel build makes them; the
	// attacker's only needs to look plausible.
	if d.vendor, err = pki.NewCodeSigning("lpsec demo live-patch signing key", 4096, 24*time.Hour); err != nil {
		return "", err
	}
	if d.attacker, err = pki.NewCodeSigning("attacker's signing key", 3072, 24*time.Hour); err != nil {
		return "", err
	}
	d.signCert, d.signKey = d.path("signing-cert.pem"), d.path("signing-key.pem")
	if err := d.vendor.Write(d.signCert, d.signKey); err != nil {
		return "", err
	}
	d.adminPassword = randHex(12)
	d.reportKey = "k1:" + randHex(32)
	d.contractToken = "contract-" + randHex(16)
	d.secrets = append(d.secrets, d.adminPassword, d.reportKey[3:], d.contractToken)
	return "TLS CA, server certificate, RSA-4096 signing key, report key", nil
}

func (d *demo) serverOptions(name string) server.Options {
	return server.Options{
		Listen:       "127.0.0.1:0",
		StateDir:     d.path(name),
		TLSCert:      d.certFile,
		TLSKey:       d.keyFile,
		AdminTTL:     8 * time.Hour,
		SigningCerts: []string{d.signCert},
		ReportKey:    d.reportKey,
		SyncInterval: time.Hour,
		MaxPatchSize: 64 << 20,
	}
}

func (d *demo) newClient(name, url string, tlsOnly bool) (*client.Client, error) {
	mid := d.path(name + "-machine-id")
	if _, err := os.Stat(mid); err != nil {
		if err := os.WriteFile(mid, []byte(randHex(16)+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return client.New(client.Config{
		RemoteServer:     url,
		CACerts:          d.caFile,
		TLSPatchDownload: tlsOnly,
		DialTimeout:      5 * time.Second,
		StateDir:         d.path(name),
		SigningCerts:     []string{d.signCert},
		MachineIDFile:    mid,
		Kernel:           machineKernel,
		ReportKey:        d.reportKey,
		ContractsURL:     d.contracts.URL,
		Logger:           d.log,
	})
}

func (d *demo) signedPatch(signer *pki.Pair, version int) ([]byte, error) {
	signed, err := patchverify.SignModule(demoModule(version), signer.Key, signer.Cert)
	if err != nil {
		return nil, err
	}
	return d.buildPatch(signed, version)
}

func (d *demo) buildPatch(signedModule []byte, version int) ([]byte, error) {
	var buf bytes.Buffer
	meta := patchverify.Metadata{Kernel: kernelRelease, Flavour: flavour, Version: version, Architecture: "x86_64",
		Module: kmodtest.LivepatchName(kernelRelease, version) + ".ko"}
	err := patchverify.BuildPatch(&buf, meta, signedModule)
	return buf.Bytes(), err
}

func statusIs(err error, status int, code string) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Status == status && (code == "" || se.Code == code)
}

func (d *demo) story(ctx context.Context) {
	st := d.st
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	if !st.ok("create CA, certificates and the vendor's patch-signing key", d.setup) {
		return
	}
	if !st.ok("start the entitlement service (contracts) on loopback TLS", func() (string, error) {
		c, err := contracts.Start(ctx, contracts.Options{Listen: "127.0.0.1:0", StateDir: d.path("contracts"),
			TLSCert: d.certFile, TLSKey: d.keyFile, ContractTokens: d.contractToken, DischargeTTL: 5 * time.Minute}, d.log.With("party", "contracts"))
		if err != nil {
			return "", err
		}
		d.contracts = c
		d.closers = append(d.closers, func() { _ = c.Close(context.Background()) })
		return c.URL + " key " + c.PublicKey[:12] + "...", nil
	}) {
		return
	}
	if !st.ok("start an OpenID provider (zitadel's example OP) on loopback TLS", func() (string, error) {
		p, err := oidcop.New(ctx)
		if err != nil {
			return "", err
		}
		d.idp = p
		d.closers = append(d.closers, p.Close)
		d.idpCA = d.path("idp-ca.pem")
		if err := os.WriteFile(d.idpCA, p.CACertPEM(), 0o644); err != nil {
			return "", err
		}
		return p.Issuer + " (device client " + oidcop.DeviceClientID + ")", nil
	}) {
		return
	}
	if !st.ok("start the identity service (single sign-on stand-in) on loopback TLS", func() (string, error) { return d.startIdentity(ctx) }) {
		return
	}
	var adminHash string
	if !st.ok("start server A (memory store, contracts and identity keys pinned, SSO via the provider)", func() (string, error) {
		h, err := auth.HashPassword(d.adminPassword, auth.HashBcrypt(10))
		if err != nil {
			return "", err
		}
		adminHash = h
		o := d.serverOptions("server-a")
		o.AdminUsers = adminUser + ":" + adminHash
		o.ContractsURL = d.contracts.URL
		o.ContractsPublicKey = d.contracts.PublicKey
		o.OIDCIssuer = d.idp.Issuer
		o.OIDCClientID = oidcop.DeviceClientID
		o.OIDCAdminClaim = oidcop.GroupsClaim + "=" + oidcop.AdminGroup
		o.OIDCCACerts = d.idpCA
		o.IdentityURL = d.identity.URL
		o.IdentityPublicKey = d.identity.PublicKey
		s, err := server.Start(ctx, o, d.log.With("party", "server-a"))
		if err != nil {
			return "", err
		}
		d.a = s
		d.closers = append(d.closers, func() { _ = s.Close(context.Background()) })
		return s.URL, nil
	}) {
		return
	}

	admin, err := client.NewAdmin(d.a.URL, d.caFile)
	if err != nil {
		st.fatal("admin tool", err)
		return
	}
	st.refused("admin login with a wrong password", func() error {
		_, err := admin.Login(ctx, adminUser, "wrong-"+d.adminPassword)
		return err
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "") })
	var login *api.LoginResponse
	if !st.ok("admin logs in with Basic auth and receives a macaroon", func() (string, error) {
		lr, err := admin.Login(ctx, adminUser, d.adminPassword)
		if err != nil {
			return "", err
		}
		login = lr
		d.secrets = append(d.secrets, strings.TrimPrefix(lr.Header, "Macaroon "))
		return fmt.Sprintf("for %s, valid until %s", lr.User, lr.Expires.Format("2006-01-02 15:04")), nil
	}) {
		return
	}

	if !d.ssoSteps(ctx) {
		return
	}

	d.identitySteps(ctx, admin)

	var regToken *api.IssuedToken
	if !st.ok("admin issues a registration token (one use)", func() (string, error) {
		t, err := admin.IssueToken(ctx, "auth-tokens", api.IssueTokenRequest{Name: "demo fleet", Uses: 1, ValidFor: "1h"})
		if err != nil {
			return "", err
		}
		regToken = t
		d.secrets = append(d.secrets, t.Token)
		list, err := admin.ListTokens(ctx, "auth-tokens")
		if err != nil {
			return "", err
		}
		js, _ := json.Marshal(list)
		if bytes.Contains(js, []byte(t.Token)) {
			return "", errors.New("the listing shows the token value")
		}
		return "listing shows id " + t.ID[:8] + "..., never the value", nil
	}) {
		return
	}

	c1, err := d.newClient("client-1", d.a.URL, true)
	if err != nil {
		st.fatal("client 1", err)
		return
	}
	if !st.ok("client 1 registers with the registration token", func() (string, error) {
		s, err := c1.Enable(ctx, regToken.Token)
		if err != nil {
			return "", err
		}
		return "machine " + s.Machine[:8] + "... got a machine token", nil
	}) {
		return
	}
	c2, err := d.newClient("client-2", d.a.URL, true)
	if err != nil {
		st.fatal("client 2", err)
		return
	}
	st.refused("client 2 reuses the spent registration token", func() error {
		_, err := c2.Enable(ctx, regToken.Token)
		return err
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "invalid_token") })
	st.refused("client 2 asks the entitlement service with a bad contract token", func() error {
		_, err := c2.EnableWithContract(ctx, "contract-not-a-real-one")
		return err
	}, lpmac.ErrDenied, nil)
	st.ok("client 2 registers with a resource macaroon discharged by contracts", func() (string, error) {
		s, err := c2.EnableWithContract(ctx, d.contractToken)
		if err != nil {
			return "", err
		}
		return "machine " + s.Machine[:8] + "... entitled, got a machine token", nil
	})
	st.refused("a clone of client 1's VM (same machine ID) enables with a contract token", func() error {
		if err := copyFile(d.path("client-1-machine-id"), d.path("clone-1-machine-id")); err != nil {
			return err
		}
		clone, err := d.newClient("clone-1", d.a.URL, true)
		if err != nil {
			return err
		}
		_, err = clone.EnableWithContract(ctx, d.contractToken)
		return err
	}, nil, func(err error) bool { return statusIs(err, http.StatusConflict, "machine_taken") })
	st.ok("client 1's machine token still works after the takeover attempt", func() (string, error) {
		if err := c1.CheckToken(ctx); err != nil {
			return "", err
		}
		return "the name is held by the token's holder; an admin release frees it", nil
	})

	var uploaded *api.UploadResponse
	var good []byte
	if !st.ok("admin uploads a patch signed with the vendor's key", func() (string, error) {
		var err error
		if good, err = d.signedPatch(d.vendor, 1); err != nil {
			return "", err
		}
		if uploaded, err = admin.Upload(ctx, good); err != nil {
			return "", err
		}
		return uploaded.Filename + " (signature verified by the server)", nil
	}) {
		return
	}
	st.refused("admin uploads a patch signed by an unpinned key", func() error {
		bad, err := d.signedPatch(d.attacker, 2)
		if err != nil {
			return err
		}
		_, err = admin.Upload(ctx, bad)
		return err
	}, nil, func(err error) bool {
		return statusIs(err, http.StatusUnprocessableEntity, "patch_refused") && strings.Contains(err.Error(), patchverify.ErrUnknownSigner.Error())
	})

	st.ok("client 1 refreshes: SHA-256, then module signature check out", func() (string, error) {
		p, err := c1.Refresh(ctx)
		if err != nil {
			return "", err
		}
		if p == nil {
			return "", errors.New("no patch offered")
		}
		return fmt.Sprintf("v%s placed in client-1/%s (not loaded)", p.Version, rel(d.path("client-1"), p.Module)), nil
	})

	// A compromised store: the file the server serves changes under it.
	st.refused("a tarball altered on the server's disk is refused (hash)", func() error {
		file := filepath.Join(d.path("server-a"), "patches", "blobs", uploaded.SHA256)
		orig, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		defer os.WriteFile(file, orig, 0o600)
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0x01
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			return err
		}
		// A machine that has not placed this patch yet (client 1 would not
		// download the same SHA-256 again).
		cm, err := d.cloneClient(c1, "client-1", d.a.URL, true)
		if err != nil {
			return err
		}
		_, err = cm.Refresh(ctx)
		return err
	}, patchverify.ErrChecksumMismatch, nil)

	// A malicious mirror that controls the listing too: the hash matches
	// the tampered tarball, the module signature does not.
	fake, hits, err := d.startFake(ctx)
	if err != nil {
		st.fatal("start a malicious mirror", err)
		return
	}
	st.refused("a re-hashed tarball with a tampered module is refused (signature)", func() error {
		p, err := patchverify.VerifyPatch(ctx, bytes.NewReader(good), uploaded.SHA256, mustVerifier(d.vendor))
		if err != nil {
			return err
		}
		mod := bytes.Clone(p.Module)
		mod[10] ^= 0x20 // inside the signed content
		evil, err := d.buildPatch(mod, 1)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(evil)
		fake.serve(evil, api.Patch{Filename: uploaded.Filename, SHA256: hex.EncodeToString(sum[:]), URL: fake.url + "/evil/" + uploaded.Filename, Version: "1", Kernel: machineKernel})
		cm, err := d.cloneClient(c1, "client-1", fake.url, true)
		if err != nil {
			return err
		}
		_, err = cm.Refresh(ctx)
		return err
	}, patchverify.ErrBadSignature, nil)
	st.refused("a validly signed patch for another kernel is refused (.modinfo)", func() error {
		signed, err := patchverify.SignModule(kmodtest.Livepatch("5.4.0", "generic", 99), d.vendor.Key, d.vendor.Cert)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		meta := patchverify.Metadata{Kernel: "5.4.0", Flavour: "generic", Version: 99, Architecture: "x86_64", Module: kmodtest.LivepatchName("5.4.0", 99) + ".ko"}
		if err := patchverify.BuildPatch(&buf, meta, signed); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		fake.serve(buf.Bytes(), api.Patch{Filename: "livepatch-5.4.0-generic-99-x86_64.tar.gz", SHA256: hex.EncodeToString(sum[:]), URL: fake.url + "/evil/other-kernel.tar.gz", Version: "99", Kernel: machineKernel})
		cm, err := d.cloneClient(c1, "client-1", fake.url, true)
		if err != nil {
			return err
		}
		_, err = cm.Refresh(ctx)
		return err
	}, patchverify.ErrWrongKernel, nil)
	st.refused("an http:// patch URL is refused under --tls-patch-download", func() error {
		fake.serve(good, api.Patch{Filename: uploaded.Filename, SHA256: uploaded.SHA256, URL: fake.plainURL + "/plain/" + uploaded.Filename, Version: "1", Kernel: machineKernel})
		cm, err := d.cloneClient(c1, "client-1", fake.url, true)
		if err != nil {
			return err
		}
		_, err = cm.Refresh(ctx)
		if n := hits.Load(); n != 0 {
			return fmt.Errorf("the http:// URL was contacted %d times", n)
		}
		return err
	}, tlsconfig.ErrNotTLS, nil)

	st.refused("the admin macaroon with a time-before caveat in the past", func() error {
		exp, err := attenuate(login.Header, checkers.TimeBeforeCaveat(time.Now().Add(-time.Minute)).Condition)
		if err != nil {
			return err
		}
		_, err = adminWith(admin, exp).ListTokens(ctx, "auth-tokens")
		return err
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "expired") })
	st.refused("the admin macaroon with a holder-added declared caveat", func() error {
		forged, err := attenuate(login.Header, "declared username root")
		if err != nil {
			return err
		}
		_, err = adminWith(admin, forged).ListTokens(ctx, "auth-tokens")
		return err
	}, nil, func(err error) bool { return statusIs(err, http.StatusForbidden, "denied") })

	var syncTok *api.IssuedToken
	if !st.ok("admin issues a sync token for server B", func() (string, error) {
		var err error
		syncTok, err = admin.IssueToken(ctx, "sync-tokens", api.IssueTokenRequest{Name: "server B"})
		if err != nil {
			return "", err
		}
		d.secrets = append(d.secrets, syncTok.Token)
		return "id " + syncTok.ID[:8] + "...", nil
	}) {
		return
	}
	st.ok("server B starts and syncs the patch from A, verifying it first", func() (string, error) {
		o := d.serverOptions("server-b")
		o.AdminUsers = adminUser + ":" + adminHash
		o.UpstreamURL = d.a.URL
		o.UpstreamSyncToken = syncTok.Token
		o.UpstreamCACerts = d.caFile
		b, err := server.Start(ctx, o, d.log.With("party", "server-b"))
		if err != nil {
			return "", err
		}
		d.b = b
		d.closers = append(d.closers, func() { _ = b.Close(context.Background()) })
		res, err := b.SyncOnce(ctx)
		if err != nil {
			return "", err
		}
		if res.Fetched+res.Known != 1 {
			return "", fmt.Errorf("expected one patch, fetched %d, known %d", res.Fetched, res.Known)
		}
		badmin, err := client.NewAdmin(b.URL, d.caFile)
		if err != nil {
			return "", err
		}
		data, err := badmin.Get(ctx, "/v1/patches/"+uploaded.Filename)
		if err != nil {
			return "", err
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != uploaded.SHA256 {
			return "", errors.New("server B serves different bytes")
		}
		return b.URL + " now serves " + uploaded.Filename, nil
	})
	st.refused("server B syncs after A's admin revoked the sync token", func() error {
		if err := admin.Revoke(ctx, "sync-tokens", syncTok.ID); err != nil {
			return err
		}
		_, err := d.b.SyncOnce(ctx)
		return err
	}, nil, func(err error) bool { return err != nil && strings.Contains(err.Error(), "401") })

	st.ok("client 1 sends a report; the server sees only a hashed machine ID", func() (string, error) {
		r, err := c1.Report(ctx)
		if err != nil {
			return "", err
		}
		reports, err := admin.Reports(ctx)
		if err != nil {
			return "", err
		}
		raw, err := os.ReadFile(d.path("client-1-machine-id"))
		if err != nil {
			return "", err
		}
		for _, rep := range reports {
			if rep.Machine != c1.Machine() {
				continue
			}
			if bytes.Contains(rep.Report, bytes.TrimSpace(raw)) {
				return "", errors.New("the raw machine ID reached the server")
			}
			return fmt.Sprintf("machine_id %s..., state %s", r.MachineID.String()[:14], r.PatchState), nil
		}
		return "", errors.New("the report did not arrive")
	})
	st.refused("client 2 after the admin revoked its machine token", func() error {
		machines, err := admin.ListTokens(ctx, "machines")
		if err != nil {
			return err
		}
		for _, m := range machines {
			if m.Machine == c2.Machine() && !m.Revoked {
				if err := admin.Revoke(ctx, "machines", m.ID); err != nil {
					return err
				}
			}
		}
		return c2.CheckToken(ctx)
	}, nil, func(err error) bool { return statusIs(err, http.StatusUnauthorized, "") })

	st.ok("the JSON security event log holds no secret", func() (string, error) {
		for _, name := range []string{"client-1", "client-2"} {
			if js, err := os.ReadFile(filepath.Join(d.path(name), "state.json")); err == nil {
				var s client.State
				if json.Unmarshal(js, &s) == nil && s.MachineToken != "" {
					d.secrets = append(d.secrets, s.MachineToken)
				}
			}
			if raw, err := os.ReadFile(d.path(name + "-machine-id")); err == nil {
				d.secrets = append(d.secrets, strings.TrimSpace(string(raw)))
			}
		}
		events, err := os.ReadFile(d.logFile)
		if err != nil {
			return "", err
		}
		for _, sec := range d.secrets {
			if sec != "" && bytes.Contains(events, []byte(sec)) {
				return "", errors.New("a secret is in the event log")
			}
		}
		n := bytes.Count(events, []byte(`"event":`))
		return fmt.Sprintf("%d events checked against %d secrets (passwords, tokens, macaroons, machine IDs)", n, len(d.secrets)), nil
	})
}

func rel(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}

func mustVerifier(p *pki.Pair) *patchverify.Verifier {
	v, err := patchverify.NewVerifier([]*x509.Certificate{p.Cert})
	if err != nil {
		panic(err)
	}
	return v
}

// attenuate adds a first-party caveat to the macaroon in an
// "Authorization: Macaroon ..." value, as any holder can.
func attenuate(header, condition string) (string, error) {
	enc := strings.TrimPrefix(header, "Macaroon ")
	ms, err := lpmac.DecodeSlice(enc)
	if err != nil {
		return "", err
	}
	m := ms[0].Clone()
	if err := m.AddFirstPartyCaveat([]byte(condition)); err != nil {
		return "", err
	}
	out, err := lpmac.EncodeSlice(macaroon.Slice{m})
	if err != nil {
		return "", err
	}
	return "Macaroon " + out, nil
}

func adminWith(a *client.Admin, authz string) *client.Admin {
	c := *a
	c.Authorization = authz
	return &c
}

// cloneClient makes a client with c's state (machine token) pointed at
// another server URL.
func (d *demo) cloneClient(_ *client.Client, name, url string, tlsOnly bool) (*client.Client, error) {
	src, err := os.ReadFile(filepath.Join(d.path(name), "state.json"))
	if err != nil {
		return nil, err
	}
	var s client.State
	if err := json.Unmarshal(src, &s); err != nil {
		return nil, err
	}
	s.Server = url
	s.Patch = nil // a new machine: nothing placed, so every refresh downloads
	dst := name + "-mirror"
	if err := os.MkdirAll(d.path(dst), 0o700); err != nil {
		return nil, err
	}
	js, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(d.path(dst), "state.json"), js, 0o600); err != nil {
		return nil, err
	}
	if err := copyFile(d.path(name+"-machine-id"), d.path(dst+"-machine-id")); err != nil {
		return nil, err
	}
	return d.newClient(dst, url, tlsOnly)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// fakeMirror is a malicious server: its listing and its files are whatever
// the demo tells it. It has a TLS listener (trusted: the attacker is a
// mirror inside the deployment) and a plain HTTP one.
type fakeMirror struct {
	url, plainURL string
	data          atomic.Pointer[[]byte]
	entry         atomic.Pointer[api.Patch]
}

func (f *fakeMirror) serve(data []byte, p api.Patch) {
	f.data.Store(&data)
	f.entry.Store(&p)
}

func (d *demo) startFake(ctx context.Context) (*fakeMirror, *atomic.Int64, error) {
	f := &fakeMirror{}
	hits := new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/client/{machine}/patches", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.PatchList{Patches: []api.Patch{*f.entry.Load()}})
	})
	mux.HandleFunc("GET /evil/{name}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(*f.data.Load()) })
	tcfg, err := tlsconfig.Server(tlsconfig.WithCertificateFiles(d.certFile, d.keyFile))
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	hs := &http.Server{Handler: mux, TLSConfig: tcfg, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	ps := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(*f.data.Load())
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ps.Serve(plain) }()
	d.closers = append(d.closers, func() { _ = hs.Close(); _ = ps.Close() })
	f.url = "https://" + ln.Addr().String()
	f.plainURL = "http://" + plain.Addr().String()
	return f, hits, nil
}
