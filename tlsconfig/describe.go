package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Describe renders the effective settings of cfg, one "key: value" per
// line, for logs and debugging: versions, TLS 1.2 suites, groups, session
// tickets, client authentication, certificates and trust pools. A
// *tls.Config does not record where its pools came from, so pass the
// Pools used to build it to have their sources listed; a pool not passed
// is shown as "custom pool". Describe never prints key material.
func Describe(cfg *tls.Config, pools ...*Pool) string {
	if cfg == nil {
		return "tls: <nil config>\n"
	}
	var b strings.Builder
	line := func(k, format string, args ...any) { fmt.Fprintf(&b, "%s: "+format+"\n", append([]any{k}, args...)...) }

	minV, maxV := cfg.MinVersion, cfg.MaxVersion
	if minV == 0 {
		minV = tls.VersionTLS12 // crypto/tls's default minimum
	}
	if maxV == 0 {
		maxV = tls.VersionTLS13
	}
	var versions []string
	for v := minV; v <= maxV; v++ {
		versions = append(versions, tls.VersionName(v))
	}
	line("versions", "%s", strings.Join(versions, ", "))
	if minV <= tls.VersionTLS12 {
		if cfg.CipherSuites == nil {
			line("tls1.2 suites", "crypto/tls defaults")
		} else {
			var names []string
			for _, id := range cfg.CipherSuites {
				names = append(names, tls.CipherSuiteName(id))
			}
			line("tls1.2 suites", "%s", strings.Join(names, ", "))
		}
	}
	if maxV >= tls.VersionTLS13 {
		line("tls1.3 suites", "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 (fixed by crypto/tls)")
	}
	if cfg.CurvePreferences == nil {
		line("groups", "crypto/tls defaults")
	} else {
		var names []string
		for _, c := range cfg.CurvePreferences {
			names = append(names, c.String())
		}
		line("groups", "%s", strings.Join(names, ", "))
	}
	if cfg.SessionTicketsDisabled {
		line("session tickets", "off")
	} else {
		line("session tickets", "on")
	}
	if cfg.ClientSessionCache != nil {
		line("client session cache", "on")
	}
	if cfg.ServerName != "" {
		line("server name", "%s", cfg.ServerName)
	}
	if cfg.InsecureSkipVerify {
		line("verification", "DISABLED (InsecureSkipVerify)")
	}
	if cfg.VerifyConnection != nil {
		line("custom verification", "VerifyConnection (runs on resumption too)")
	}
	for _, c := range cfg.Certificates {
		if c.Leaf != nil {
			line("certificate", "%s, serial %s, valid until %s", c.Leaf.Subject, c.Leaf.SerialNumber, c.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			line("certificate", "%d-certificate chain", len(c.Certificate))
		}
	}
	if cfg.GetCertificate != nil || cfg.GetClientCertificate != nil {
		line("certificate source", "callback (files reloaded on change when built WithCertificateFiles)")
	}
	poolDesc := func(k string, p any) {
		for _, pool := range pools {
			if pool != nil && pool.pool == p {
				line(k, "%s", pool)
				return
			}
		}
		line(k, "custom pool")
	}
	if cfg.RootCAs == nil {
		line("root CAs", "system (SSL_CERT_FILE/SSL_CERT_DIR honoured)")
	} else {
		poolDesc("root CAs", cfg.RootCAs)
	}
	if cfg.ClientAuth != tls.NoClientCert {
		line("client auth", "%s", cfg.ClientAuth)
		if cfg.ClientCAs != nil {
			poolDesc("client CAs", cfg.ClientCAs)
		}
	}
	return b.String()
}
