package patchverify

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The appended-signature trailer, as include/linux/module_signature.h and
// scripts/sign-file define it.
const (
	moduleSigMagic = "~Module signature appended~\n"
	// struct module_signature: u8 algo, hash, id_type, signer_len,
	// key_id_len; u8 __pad[3]; __be32 sig_len.
	moduleSigStructLen = 12
	idTypePKCS7        = 2
	trailerLen         = moduleSigStructLen + len(moduleSigMagic)

	// maxSigLen bounds the PKCS#7 message. A SignedData without
	// certificates is under 1.2 KiB even for RSA-8192; the kernel only
	// bounds sig_len by the file size, lpsec is stricter.
	maxSigLen = 64 << 10
	// maxSignatureBytes is an RSA-8192 signature; ECDSA ones are far shorter.
	maxSignatureBytes = 1024
	// maxKeyIDLen bounds a subject key identifier (SHA-1 ones are 20 bytes).
	maxKeyIDLen = 64
)

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// hashOIDs are the digest algorithms the parser names; anything else parses
// with Hash zero and is refused by every policy.
var hashOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
	name string // as modinfo prints sig_hashalgo
}{
	{oidSHA1, crypto.SHA1, "sha1"},
	{oidSHA224, crypto.SHA224, "sha224"},
	{oidSHA256, crypto.SHA256, "sha256"},
	{oidSHA384, crypto.SHA384, "sha384"},
	{oidSHA512, crypto.SHA512, "sha512"},
}

var ecdsaOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{oidECDSAWithSHA1, crypto.SHA1},
	{oidECDSAWithSHA224, crypto.SHA224},
	{oidECDSAWithSHA256, crypto.SHA256},
	{oidECDSAWithSHA384, crypto.SHA384},
	{oidECDSAWithSHA512, crypto.SHA512},
}

// ModuleSignature is a parsed, not yet verified, appended module signature.
// Nothing in it is trustworthy until a Verifier has checked it.
type ModuleSignature struct {
	// Content is the signed part of the module: every byte before the
	// PKCS#7 message. It aliases the slice given to ParseModuleSignature.
	Content []byte
	// PKCS7 is the DER SignedData message. It aliases the input too.
	PKCS7 []byte

	// RawIssuer and SerialNumber identify the signer when the signature
	// names it by issuer and serial number (sign-file's default).
	RawIssuer    []byte
	SerialNumber *big.Int
	// SubjectKeyID identifies the signer instead when the signature was
	// made with sign-file -k; RawIssuer and SerialNumber are then nil.
	SubjectKeyID []byte

	// Hash is the digest algorithm, zero if it is not one lpsec knows.
	Hash crypto.Hash
	// PublicKeyAlgorithm is the signature algorithm's key type: x509.RSA,
	// x509.ECDSA, or x509.UnknownPublicKeyAlgorithm.
	PublicKeyAlgorithm x509.PublicKeyAlgorithm
	// Signature is the raw signature value.
	Signature []byte

	digestOID asn1.ObjectIdentifier
	sigHash   crypto.Hash // hash named by an ecdsa-with-SHAx OID
}

// ParseModuleSignature splits a signed module into its content and
// signature and parses the signature exactly as the kernel's mod_check_sig
// and PKCS#7 parser do, and more strictly: the trailer's unused fields must be
// zero, the PKCS#7 message must be strict DER, detached, with exactly one
// SignerInfo, and without signed or unsigned attributes. Certificates
// embedded in the message are skipped: they are never trusted.
//
// A module without the magic string fails with ErrUnsigned; any other
// defect with ErrMalformedSignature.
func ParseModuleSignature(module []byte) (*ModuleSignature, error) {
	if !bytes.HasSuffix(module, []byte(moduleSigMagic)) {
		return nil, ErrUnsigned
	}
	rest := module[:len(module)-len(moduleSigMagic)]
	if len(rest) < moduleSigStructLen {
		return nil, fmt.Errorf("%w: truncated before struct module_signature", ErrMalformedSignature)
	}
	ms := rest[len(rest)-moduleSigStructLen:]
	algo, hash, idType, signerLen, keyIDLen := ms[0], ms[1], ms[2], ms[3], ms[4]
	sigLen := binary.BigEndian.Uint32(ms[8:12])
	// mod_check_sig's first test: the signature must leave at least one
	// byte of module before it.
	if uint64(sigLen) >= uint64(len(rest)-moduleSigStructLen) {
		return nil, fmt.Errorf("%w: sig_len %d does not fit in the module", ErrMalformedSignature, sigLen)
	}
	if idType != idTypePKCS7 {
		return nil, fmt.Errorf("%w: id_type %d is not PKCS#7", ErrMalformedSignature, idType)
	}
	if algo != 0 || hash != 0 || signerLen != 0 || keyIDLen != 0 || ms[5] != 0 || ms[6] != 0 || ms[7] != 0 {
		return nil, fmt.Errorf("%w: non-zero algo, hash, signer_len, key_id_len or padding", ErrMalformedSignature)
	}
	if sigLen == 0 || sigLen > maxSigLen {
		return nil, fmt.Errorf("%w: sig_len %d outside 1..%d", ErrMalformedSignature, sigLen, maxSigLen)
	}
	end := len(rest) - moduleSigStructLen
	start := end - int(sigLen)
	s := &ModuleSignature{Content: module[:start:start], PKCS7: module[start:end:end]}
	if err := s.parsePKCS7(); err != nil {
		return nil, err
	}
	return s, nil
}

func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformedSignature, what)
}

// parsePKCS7 reads ContentInfo{signedData, [0] SignedData}. cryptobyte
// refuses indefinite and non-minimal lengths and non-minimal integers, so
// only DER gets through.
func (s *ModuleSignature) parsePKCS7() error {
	input := cryptobyte.String(s.PKCS7)
	var ci, sd cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !input.ReadASN1(&ci, cbasn1.SEQUENCE) || !input.Empty() {
		return malformed("PKCS#7 is not one DER SEQUENCE")
	}
	if !ci.ReadASN1ObjectIdentifier(&ctype) || !ctype.Equal(oidSignedData) {
		return malformed("PKCS#7 content type is not signedData")
	}
	if !ci.ReadASN1(&sd, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() {
		return malformed("bad SignedData wrapper")
	}
	var signed cryptobyte.String
	if !sd.ReadASN1(&signed, cbasn1.SEQUENCE) || !sd.Empty() {
		return malformed("bad SignedData")
	}
	var version int
	if !signed.ReadASN1Integer(&version) || (version != 1 && version != 3) {
		return malformed("SignedData version is neither 1 nor 3")
	}
	var digestAlgs, digestAlg cryptobyte.String
	if !signed.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!digestAlgs.ReadASN1(&digestAlg, cbasn1.SEQUENCE) || !digestAlgs.Empty() {
		return malformed("SignedData must name exactly one digest algorithm")
	}
	setDigest, ok := parseAlgorithmID(digestAlg)
	if !ok {
		return malformed("bad digest AlgorithmIdentifier")
	}
	var encap cryptobyte.String
	var econtentType asn1.ObjectIdentifier
	if !signed.ReadASN1(&encap, cbasn1.SEQUENCE) ||
		!encap.ReadASN1ObjectIdentifier(&econtentType) || !econtentType.Equal(oidData) {
		return malformed("encapsulated content type is not data")
	}
	if !encap.Empty() {
		// The kernel supplies the module as detached data and refuses a
		// message that carries its own.
		return malformed("signature is not detached")
	}
	// certificates [0] and crls [1] are skipped unread: trust comes only
	// from pinned certificates, never from the message.
	for _, tag := range []cbasn1.Tag{cbasn1.Tag(0).Constructed().ContextSpecific(), cbasn1.Tag(1).Constructed().ContextSpecific()} {
		if !signed.SkipOptionalASN1(tag) {
			return malformed("bad certificates or crls field")
		}
	}
	var infos, info cryptobyte.String
	if !signed.ReadASN1(&infos, cbasn1.SET) || !signed.Empty() {
		return malformed("bad signerInfos")
	}
	if !infos.ReadASN1(&info, cbasn1.SEQUENCE) {
		return malformed("no SignerInfo")
	}
	if !infos.Empty() {
		return malformed("more than one SignerInfo")
	}
	if err := s.parseSignerInfo(info, version); err != nil {
		return err
	}
	if !setDigest.Equal(s.digestOID) {
		return malformed("SignerInfo digest algorithm differs from SignedData's")
	}
	return nil
}

func (s *ModuleSignature) parseSignerInfo(info cryptobyte.String, sdVersion int) error {
	var version int
	if !info.ReadASN1Integer(&version) {
		return malformed("bad SignerInfo version")
	}
	// pkcs7_note_signerinfo_version: v1 names issuer+serial inside a v1
	// message, v3 a subject key identifier inside a v3 message.
	switch {
	case version == 1 && sdVersion == 1:
		var ias, rawIssuer cryptobyte.String
		serial := new(big.Int)
		if !info.ReadASN1(&ias, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Element(&rawIssuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(serial) || !ias.Empty() {
			return malformed("bad issuerAndSerialNumber")
		}
		s.RawIssuer, s.SerialNumber = rawIssuer, serial
	case version == 3 && sdVersion == 3:
		var skid cryptobyte.String
		if !info.ReadASN1(&skid, cbasn1.Tag(0).ContextSpecific()) || len(skid) == 0 || len(skid) > maxKeyIDLen {
			return malformed("bad subjectKeyIdentifier")
		}
		s.SubjectKeyID = skid
	default:
		return malformed("SignerInfo and SignedData versions do not match a known signer identifier")
	}
	var digestAlg cryptobyte.String
	if !info.ReadASN1(&digestAlg, cbasn1.SEQUENCE) {
		return malformed("bad SignerInfo digest algorithm")
	}
	oid, ok := parseAlgorithmID(digestAlg)
	if !ok {
		return malformed("bad SignerInfo digest algorithm")
	}
	s.digestOID = oid
	for _, h := range hashOIDs {
		if h.oid.Equal(oid) {
			s.Hash = h.hash
		}
	}
	if info.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		// The kernel refuses authenticated attributes on module signatures.
		return malformed("signed attributes present")
	}
	var sigAlg cryptobyte.String
	if !info.ReadASN1(&sigAlg, cbasn1.SEQUENCE) {
		return malformed("bad signature algorithm")
	}
	if err := s.parseSignatureAlgorithm(sigAlg); err != nil {
		return err
	}
	var sig cryptobyte.String
	if !info.ReadASN1(&sig, cbasn1.OCTET_STRING) || len(sig) == 0 || len(sig) > maxSignatureBytes {
		return malformed("bad signature value")
	}
	s.Signature = sig
	if !info.Empty() {
		return malformed("unsigned attributes or trailing data in SignerInfo")
	}
	return nil
}

// parseAlgorithmID reads an AlgorithmIdentifier whose parameters are absent
// or NULL, the only forms digest and signature algorithms take here.
func parseAlgorithmID(alg cryptobyte.String) (asn1.ObjectIdentifier, bool) {
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, false
	}
	if alg.Empty() {
		return oid, true
	}
	var null cryptobyte.String
	if !alg.ReadASN1(&null, cbasn1.NULL) || len(null) != 0 || !alg.Empty() {
		return nil, false
	}
	return oid, true
}

func (s *ModuleSignature) parseSignatureAlgorithm(alg cryptobyte.String) error {
	oid, ok := parseAlgorithmID(alg)
	if !ok {
		return malformed("bad signature AlgorithmIdentifier")
	}
	// pkcs7_sig_note_pkey_algo: rsaEncryption and ecdsa-with-SHAx only.
	if oid.Equal(oidRSAEncryption) {
		s.PublicKeyAlgorithm = x509.RSA
		return nil
	}
	for _, e := range ecdsaOIDs {
		if e.oid.Equal(oid) {
			s.PublicKeyAlgorithm, s.sigHash = x509.ECDSA, e.hash
			return nil
		}
	}
	s.PublicKeyAlgorithm = x509.UnknownPublicKeyAlgorithm
	return nil
}

// SignerName returns the common name of the signer's issuer, which modinfo
// prints as "signer". It is empty for subject-key-identifier signatures,
// for which modinfo prints no signer either.
func (s *ModuleSignature) SignerName() string {
	if s.RawIssuer == nil {
		return ""
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(s.RawIssuer, &rdn); err != nil || len(rest) != 0 {
		return ""
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdn)
	return name.CommonName
}

// KeyID returns the signer's serial number, or its subject key identifier,
// as colon-separated upper-case hex: modinfo's "sig_key" format.
func (s *ModuleSignature) KeyID() string {
	if s.SerialNumber != nil {
		return colonHex(s.SerialNumber.Bytes())
	}
	return colonHex(s.SubjectKeyID)
}

// HashName returns the digest algorithm as modinfo prints "sig_hashalgo"
// ("sha512"), or "unknown".
func (s *ModuleSignature) HashName() string {
	for _, h := range hashOIDs {
		if h.hash == s.Hash && s.Hash != 0 {
			return h.name
		}
	}
	return "unknown"
}

func colonHex(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}
