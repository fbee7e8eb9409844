package patchverify

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var catNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func signCatalogue(t testing.TB, c Catalogue, signer string) []byte {
	t.Helper()
	b, err := SignCatalogue(c, loadKey(t, signer), loadCert(t, signer))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCatalogue: expiry, rollback of the catalogue version, wrong signer,
// a module passed off as a catalogue, and malformed contents.
func TestCatalogue(t *testing.T) {
	v := newTestVerifier(t, PolicyLivepatch, "vendor_rsa4096")
	clock := WithClock(func() time.Time { return catNow })
	data := buildTestPatch(t)
	entry := CatalogueEntry{Filename: "p.tar.gz", SHA256: sum(data), Kernel: "6.1.0-18-generic", Version: 3}
	good := Catalogue{Version: 7, Expires: catNow.Add(24 * time.Hour), Patches: []CatalogueEntry{entry}}
	signed := signCatalogue(t, good, "vendor_rsa4096")
	c, err := VerifyCatalogue(signed, v, clock, WithMinCatalogueVersion(7))
	if err != nil || c.Version != 7 || len(c.Patches) != 1 {
		t.Fatalf("VerifyCatalogue = %+v, %v", c, err)
	}
	expired := good
	expired.Expires = catNow
	older := good
	older.Version = 6
	// Raw contents signed as the vendor would, to reach the parser.
	raw := func(body string) []byte { return signWith(t, []byte(catalogueMagic+body), "vendor_rsa4096") }
	tampered := bytes.Clone(signed)
	tampered[len(catalogueMagic)+12] ^= 1
	tests := []struct {
		name string
		data []byte
		opts []Option
		want error
		why  string
	}{
		{"expired", signCatalogue(t, expired, "vendor_rsa4096"), nil, ErrCatalogueExpired, "version 7 expired at 2026-12-01T12:00:00Z"},
		{"older_than_seen", signCatalogue(t, older, "vendor_rsa4096"), []Option{WithMinCatalogueVersion(7)}, ErrCatalogueRollback, "version 6, version 7 was seen"},
		{"wrong_signer", signCatalogue(t, good, "attacker_rsa4096"), nil, ErrUnknownSigner, "sig_key"},
		{"tampered", tampered, nil, ErrBadSignature, "does not verify"},
		{"unsigned", []byte(catalogueMagic + `{}`), nil, ErrUnsigned, ""},
		{"module_as_catalogue", signedTestModule(t), nil, ErrMalformedCatalogue, "not a patch catalogue"},
		{"too_large", make([]byte, MaxCatalogueSize+1), nil, ErrTooLarge, "catalogue larger than"},
		{"not_json", raw(`{"version":`), nil, ErrMalformedCatalogue, "unexpected EOF"},
		{"unknown_field", raw(`{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[],"extra":1}`), nil, ErrMalformedCatalogue, `unknown field "extra"`},
		{"trailing_data", raw(`{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[]} {}`), nil, ErrMalformedCatalogue, "data after the catalogue"},
		{"version_zero", raw(`{"version":0,"expires":"2027-01-01T00:00:00Z","patches":[]}`), nil, ErrMalformedCatalogue, "version 0 is not positive"},
		{"no_expiry", raw(`{"version":1,"patches":[]}`), nil, ErrMalformedCatalogue, "no expiry"},
		{"bad_sha", raw(`{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[{"filename":"f","sha256":"` + strings.ToUpper(entry.SHA256) + `","kernel":"k","version":1}]}`), nil, ErrMalformedCatalogue, "not 64 lower-case hex"},
		{"duplicate", raw(`{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[{"filename":"f","sha256":"` + entry.SHA256 + `","kernel":"k","version":1},{"filename":"g","sha256":"` + entry.SHA256 + `","kernel":"k","version":2}]}`), nil, ErrMalformedCatalogue, "listed twice"},
		{"escape_in_name", raw(`{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[{"filename":"f\u001b[2J","sha256":"` + entry.SHA256 + `","kernel":"k","version":1}]}`), nil, ErrMalformedCatalogue, "unprintable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyCatalogue(tt.data, v, append([]Option{clock}, tt.opts...)...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) || c != nil {
				t.Fatalf("VerifyCatalogue = %v; want %v (%q)", err, tt.want, tt.why)
			}
		})
	}
	// A signed catalogue cannot pass for a module: it is not ELF.
	asModule := makeTar(t, file("livepatch_6_1_0_18_3.ko", signed), file("metadata.json", testMetaJSON))
	if _, err := VerifyPatch(context.Background(), bytes.NewReader(asModule), sum(asModule), v); !errors.Is(err, ErrMalformedModule) {
		t.Errorf("catalogue as module: %v", err)
	}

	// VerifyPatch with the catalogue: listed passes; unlisted, or listed for
	// another kernel or version, is refused.
	if _, err := VerifyPatch(context.Background(), bytes.NewReader(data), sum(data), v, WithCatalogue(c)); err != nil {
		t.Fatalf("listed patch: %v", err)
	}
	unlisted := makeTar(t, file("metadata.json", testMetaJSON), file("livepatch_6_1_0_18_3.ko", signedTestModule(t)))
	for name, tc := range map[string]struct {
		cat  Catalogue
		data []byte
		why  string
	}{
		"unlisted":        {good, unlisted, "is not in catalogue version 7"},
		"other_kernel":    {Catalogue{Version: 8, Expires: good.Expires, Patches: []CatalogueEntry{{Filename: "p", SHA256: sum(data), Kernel: "5.4.0", Version: 3}}}, data, `lists ` + sum(data) + ` for kernel "5.4.0" version 3`},
		"other_version":   {Catalogue{Version: 8, Expires: good.Expires, Patches: []CatalogueEntry{{Filename: "p", SHA256: sum(data), Kernel: entry.Kernel, Version: 4}}}, data, "version 4, the patch says otherwise"},
		"empty_catalogue": {Catalogue{Version: 9, Expires: good.Expires}, data, "is not in catalogue version 9"},
	} {
		t.Run(name, func(t *testing.T) {
			cat, err := VerifyCatalogue(signCatalogue(t, tc.cat, "vendor_rsa4096"), v, clock)
			if err != nil {
				t.Fatal(err)
			}
			_, err = VerifyPatch(context.Background(), bytes.NewReader(tc.data), sum(tc.data), v, WithCatalogue(cat))
			if !errors.Is(err, ErrNotInCatalogue) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("VerifyPatch = %v, want ErrNotInCatalogue (%q)", err, tc.why)
			}
		})
	}
	for name, err := range map[string]error{
		"min_version_zero": func() error { _, err := VerifyCatalogue(signed, v, WithMinCatalogueVersion(0)); return err }(),
		"clock_nil":        func() error { _, err := VerifyCatalogue(signed, v, WithClock(nil)); return err }(),
		"catalogue_nil": func() error {
			_, err := VerifyPatch(context.Background(), bytes.NewReader(data), sum(data), v, WithCatalogue(nil))
			return err
		}(),
		"patch_opt": func() error { _, err := VerifyCatalogue(signed, v, WithMaxEntries(1)); return err }(),
	} {
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := SignCatalogue(Catalogue{Version: 1}, loadKey(t, "vendor_rsa4096"), loadCert(t, "vendor_rsa4096")); !errors.Is(err, ErrMalformedCatalogue) {
		t.Errorf("SignCatalogue without expiry: %v", err)
	}
}

func FuzzParseCatalogue(f *testing.F) {
	f.Add([]byte(catalogueMagic + `{"version":1,"expires":"2027-01-01T00:00:00Z","patches":[{"filename":"f","sha256":"` + strings.Repeat("ab", 32) + `","kernel":"k","version":1}]}`))
	f.Add([]byte(catalogueMagic + `{"version":1}`))
	f.Add([]byte("not a catalogue"))
	f.Fuzz(func(t *testing.T, content []byte) {
		c, err := parseCatalogue(content)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformedCatalogue) {
				t.Fatalf("parseCatalogue = %+v, %v", c, err)
			}
			return
		}
		if c.Version < 1 || c.Expires.IsZero() {
			t.Fatalf("accepted %+v", c)
		}
		for _, e := range c.Patches {
			if len(e.SHA256) != 64 || strings.ContainsFunc(e.Filename+e.Kernel, unsafeRune) {
				t.Fatalf("accepted entry %+v", e)
			}
		}
	})
}
