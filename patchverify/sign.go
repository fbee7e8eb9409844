package patchverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignModule returns module with an appended signature made with key, which
// must be the private key of cert. The output is byte for byte what the
// kernel's scripts/sign-file writes (and, for RSA, what
// `openssl cms -sign -binary -noattr -nocerts -nosmimecap -outform DER`
// writes followed by the trailer): a detached PKCS#7 SignedData without
// certificates or signed attributes, the 12-byte struct module_signature and
// the magic string. Compress the module, if at all, after signing.
func SignModule(module []byte, key crypto.Signer, cert *x509.Certificate, opts ...Option) ([]byte, error) {
	cfg, err := build("SignModule", forSign, opts)
	if err != nil {
		return nil, err
	}
	if len(module) == 0 {
		return nil, errors.New("patchverify: cannot sign an empty module")
	}
	if key == nil || cert == nil {
		return nil, errors.New("patchverify: SignModule needs a key and its certificate")
	}
	var digestOID asn1.ObjectIdentifier
	switch cfg.hash {
	case crypto.SHA256:
		digestOID = oidSHA256
	case crypto.SHA384:
		digestOID = oidSHA384
	case crypto.SHA512:
		digestOID = oidSHA512
	default:
		return nil, fmt.Errorf("%w: SignModule signs with SHA-256, SHA-384 or SHA-512, not %v", ErrDisallowedAlgorithm, cfg.hash)
	}
	if pk, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(cert.PublicKey) {
		return nil, errors.New("patchverify: the key is not the certificate's")
	}
	if cfg.keyID && len(cert.SubjectKeyId) == 0 {
		return nil, errors.New("patchverify: SignWithKeyID needs a certificate with a subject key identifier")
	}

	h := cfg.hash.New()
	h.Write(module)
	digest := h.Sum(nil)

	// The signature algorithm identifiers are OpenSSL's: rsaEncryption with
	// NULL parameters, ecdsa-with-SHAx without parameters.
	var sigAlg func(*cryptobyte.Builder)
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey:
		sigAlg = func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSAEncryption)
			b.AddASN1NULL()
		}
	case *ecdsa.PublicKey:
		var oid asn1.ObjectIdentifier
		for _, e := range ecdsaOIDs {
			if e.hash == cfg.hash {
				oid = e.oid
			}
		}
		sigAlg = func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) }
	default:
		return nil, fmt.Errorf("%w: cannot sign with a %v key", ErrDisallowedAlgorithm, cert.PublicKeyAlgorithm)
	}
	// For RSA, crypto.Hash options mean PKCS #1 v1.5, which is deterministic:
	// that is what makes the output reproducible and equal to OpenSSL's.
	signature, err := key.Sign(rand.Reader, digest, cfg.hash)
	if err != nil {
		return nil, fmt.Errorf("patchverify: signing: %w", err)
	}

	version := int64(1)
	if cfg.keyID {
		version = 3
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(version)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(digestOID) })
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(version)
						if cfg.keyID {
							b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(cert.SubjectKeyId) })
						} else {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(cert.RawIssuer)
								b.AddASN1BigInt(cert.SerialNumber)
							})
						}
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(digestOID) })
						b.AddASN1(cbasn1.SEQUENCE, sigAlg)
						b.AddASN1OctetString(signature)
					})
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("patchverify: encoding PKCS#7: %w", err)
	}
	if len(der) > maxSigLen {
		return nil, fmt.Errorf("%w: PKCS#7 message of %d bytes", ErrTooLarge, len(der))
	}
	out := make([]byte, 0, len(module)+len(der)+trailerLen)
	out = append(out, module...)
	out = append(out, der...)
	var ms [moduleSigStructLen]byte
	ms[2] = idTypePKCS7
	binary.BigEndian.PutUint32(ms[8:], uint32(len(der)))
	out = append(out, ms[:]...)
	out = append(out, moduleSigMagic...)
	return out, nil
}
