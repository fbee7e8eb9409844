package patchverify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/lpsec/lpsec/patchverify"
)

// The examples use the test key and certificates in testdata.

func readCert(name string) *x509.Certificate {
	b, err := os.ReadFile("testdata/" + name + ".crt")
	if err != nil {
		log.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	return cert
}

func readKey(name string) crypto.Signer {
	b, err := os.ReadFile("testdata/" + name + ".key")
	if err != nil {
		log.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	return key.(crypto.Signer)
}

// A server signs a module and packages it; the client verifies the tarball
// against the checksum it was given and its pinned certificate, for its own
// kernel and only if it is newer than what it applied, then records it.
func ExampleVerifyPatch() {
	// good_livepatch_unsigned.ko says name=livepatch_6_1_0_18_3, version=3
	// and vermagic=6.1.0-18-generic: what the metadata must say too.
	module, _ := os.ReadFile("testdata/good_livepatch_unsigned.ko")
	signed, err := patchverify.SignModule(module, readKey("vendor_rsa4096"), readCert("vendor_rsa4096"))
	if err != nil {
		log.Fatal(err)
	}
	var tarball bytes.Buffer
	meta := patchverify.Metadata{Kernel: "6.1.0-18", Flavour: "generic", Version: 3, Architecture: "x86_64", Module: "livepatch_6_1_0_18_3.ko"}
	if err := patchverify.BuildPatch(&tarball, meta, signed); err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(tarball.Bytes()) // what the server announces
	data := tarball.Bytes()

	// The client side.
	v, err := patchverify.NewVerifier([]*x509.Certificate{readCert("vendor_rsa4096")})
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "lpsec-example-")
	defer os.RemoveAll(dir)
	state, err := patchverify.OpenFileState(filepath.Join(dir, "applied.json"))
	if err != nil {
		log.Fatal(err)
	}
	verify := func() (*patchverify.Patch, error) {
		return patchverify.VerifyPatch(context.Background(), bytes.NewReader(data), hex.EncodeToString(sum[:]), v,
			patchverify.WithKernelRelease("6.1.0-18-generic"), patchverify.WithAppliedState(state))
	}
	p, err := verify()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("module:", p.ModuleName, "version", p.Metadata.Version, "for", p.Info.Release())
	fmt.Println("signer:", p.Signer.Certificate.Subject.CommonName)
	// ... apply p.Module, then:
	if err := p.RecordApplied(context.Background()); err != nil {
		log.Fatal(err)
	}
	_, err = verify()
	fmt.Println("again:", errors.Is(err, patchverify.ErrRollback))
	// Output:
	// module: livepatch_6_1_0_18_3.ko version 3 for 6.1.0-18-generic
	// signer: lpsec test live-patch signing
	// again: true
}

// SignModule writes what the kernel's sign-file writes; ParseModuleSignature
// reads the fields modinfo prints.
func ExampleSignModule() {
	module, _ := os.ReadFile("testdata/good_module_unsigned.ko")
	signed, err := patchverify.SignModule(module, readKey("vendor_rsa4096"), readCert("vendor_rsa4096"))
	if err != nil {
		log.Fatal(err)
	}
	s, err := patchverify.ParseModuleSignature(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signer:", s.SignerName())
	fmt.Println("sig_key:", s.KeyID())
	fmt.Println("sig_hashalgo:", s.HashName())
	// Output:
	// signer: lpsec test live-patch signing
	// sig_key: 18:8A:AB:9E:ED:CD:36:51:19:F6:18:74:6C:E8:61:6E:D1:FC:5A:24
	// sig_hashalgo: sha512
}

// A module signed with sign-file -k names its signer by subject key
// identifier; the Verifier finds the pinned certificate by it.
func ExampleVerifier_VerifyModule() {
	signed, _ := os.ReadFile("testdata/good_signfile_rsa4096_sha512_keyid.ko")
	v, err := patchverify.NewVerifier([]*x509.Certificate{readCert("attacker_rsa4096"), readCert("vendor_rsa4096")})
	if err != nil {
		log.Fatal(err)
	}
	s, err := v.VerifyModule(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Certificate.Subject.CommonName, s.Signature.KeyID())
	// Output:
	// lpsec test live-patch signing D0:AE:70:75:AE:5C:71:3F:BF:0E:03:ED:94:52:34:C0:67:AD:AB:7D
}

// Download keeps the patch in a private, unlinked file and hands it on only
// when its checksum matched; VerifyPatch then reads it from there.
func ExampleDownload() {
	patch, _ := os.ReadFile("testdata/good_patch_gnutar.tar.bz2")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(patch) }))
	defer srv.Close()
	sum := sha256.Sum256(patch)
	want := hex.EncodeToString(sum[:])

	ctx := context.Background()
	f, err := patchverify.Download(ctx, srv.Client(), srv.URL+"/livepatch.tar.bz2", want, patchverify.WithRequireHTTPS())
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	v, err := patchverify.NewVerifier([]*x509.Certificate{readCert("vendor_rsa4096")})
	if err != nil {
		log.Fatal(err)
	}
	p, err := patchverify.VerifyPatch(ctx, f, want, v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.ModuleName)
	// Output:
	// livepatch-6.1.0-18-generic-3-x86_64/livepatch_6_1_0_18_3.ko
}
