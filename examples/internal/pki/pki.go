// Package pki makes and reads the keys and certificates the lpsec examples
// need: a throwaway TLS CA with server certificates (for servers started
// without --tls-cert), and RSA code-signing certificates shaped like the
// ones the Linux kernel build makes for module signing.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Pair is a certificate and its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// ski is RFC 5280's method 1 (what openssl's subjectKeyIdentifier=hash
// writes): SHA-1 of the subjectPublicKey BIT STRING.
func ski(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// NewCA makes a self-signed ECDSA P-256 CA valid for validity.
func NewCA(name string, validity time.Duration) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := ski(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name, validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.SubjectKeyId = id
	return create(tmpl, tmpl, key, key)
}

// IssueServer makes an ECDSA P-256 TLS server certificate for hosts (DNS
// names or IP addresses), signed by ca.
func IssueServer(ca *Pair, hosts []string, validity time.Duration) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(hosts[0], validity)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return create(tmpl, ca.Cert, key, ca.Key)
}

// NewCodeSigning makes an RSA key of bits and a self-signed certificate
// with the extensions of the kernel's certs/default_x509.genkey
// (CA:FALSE, digitalSignature, subject and authority key identifiers).
func NewCodeSigning(commonName string, bits int, validity time.Duration) (*Pair, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	id, err := ski(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl, err := template(commonName, validity)
	if err != nil {
		return nil, err
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	tmpl.SubjectKeyId = id
	tmpl.AuthorityKeyId = id
	tmpl.SignatureAlgorithm = x509.SHA512WithRSA
	return create(tmpl, tmpl, key, key)
}

// CertPEM encodes a certificate.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key as PKCS#8.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Write stores the pair as certFile (0644) and keyFile (0600).
func (p *Pair) Write(certFile, keyFile string) error {
	kp, err := KeyPEM(p.Key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, kp, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, CertPEM(p.Cert), 0o644)
}

// ReadCerts reads every CERTIFICATE block of a PEM file (or a single DER
// certificate). A block that does not parse is an error naming it.
func ReadCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCerts(data, file)
}

// ParseCerts is ReadCerts on bytes; name is used in errors.
func ParseCerts(data []byte, name string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for i := 1; ; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d: %w", name, i, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		if c, err := x509.ParseCertificate(data); err == nil {
			return []*x509.Certificate{c}, nil
		}
		return nil, fmt.Errorf("%s: no certificate found (want PEM CERTIFICATE blocks or one DER certificate)", name)
	}
	return out, nil
}

// ReadKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC).
func ReadKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var k any
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: key type %T cannot sign", file, k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s: no PEM private key found", file)
}

// ServerFiles names the TLS files a server keeps in its state directory.
type ServerFiles struct {
	CACert, CAKey, Cert, Key string
	// Created is true when this call made them.
	Created bool
}

// EnsureServerTLS returns the server certificate files in dir, creating a
// CA and a server certificate for hosts when they do not exist yet.
func EnsureServerTLS(dir string, hosts []string) (*ServerFiles, error) {
	f := &ServerFiles{
		CACert: filepath.Join(dir, "ca.pem"),
		CAKey:  filepath.Join(dir, "ca-key.pem"),
		Cert:   filepath.Join(dir, "server.pem"),
		Key:    filepath.Join(dir, "server-key.pem"),
	}
	if _, err := os.Stat(f.Cert); err == nil {
		if _, err := os.Stat(f.Key); err == nil {
			return f, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA("lpsec example CA", 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	srv, err := IssueServer(ca, hosts, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := ca.Write(f.CACert, f.CAKey); err != nil {
		return nil, err
	}
	if err := srv.Write(f.Cert, f.Key); err != nil {
		return nil, err
	}
	f.Created = true
	return f, nil
}

// template starts a certificate: a random serial, the examples'
// organisation, and a validity that starts five minutes ago so that a
// peer whose clock is a little behind still accepts it.
func template(commonName string, validity time.Duration) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"lpsec example"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
	}, nil
}

// create signs tmpl for key with signer (parent's key) and returns the pair.
func create(tmpl, parent *x509.Certificate, key, signer crypto.Signer) (*Pair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, Key: key}, nil
}
