package tlsconfig

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
)

// BenchmarkHandshake compares handshakes between Server() and Client()
// with handshakes between Go's default configurations, on the same
// ECDSA P-256 certificate over an in-memory pipe. "Full" forgets the
// client's session cache so every handshake is complete; "Resumed" resumes
// from a ticket of a previous handshake. Go 1.26's defaults also negotiate
// X25519MLKEM768, so both sides pay for the hybrid key exchange.
func BenchmarkHandshake(b *testing.B) {
	ca := newCA(b, "bench CA")
	cert, _, _ := ca.issue(b, leafSpec{}, "localhost")
	pool := ca.pool(b)

	ours := func() (*tls.Config, *tls.Config) {
		s, err := Server(WithCertificate(cert))
		must(b, err)
		c, err := Client(WithRootCAs(pool), WithServerName("localhost"))
		must(b, err)
		return s, c
	}
	baseline := func() (*tls.Config, *tls.Config) {
		return &tls.Config{Certificates: []tls.Certificate{cert}},
			&tls.Config{RootCAs: pool.CertPool(), ServerName: "localhost"}
	}
	for _, mode := range []string{"Full", "Resumed"} {
		b.Run(mode, func(b *testing.B) {
			for _, side := range []struct {
				name string
				cfgs func() (*tls.Config, *tls.Config)
			}{{"lpsec", ours}, {"baseline", baseline}} {
				b.Run(side.name, func(b *testing.B) {
					srv, cli := side.cfgs()
					if mode == "Full" {
						cli.ClientSessionCache = nil
					} else {
						cli.ClientSessionCache = tls.NewLRUClientSessionCache(1)
						handshake(b, srv, cli, false) // obtain a ticket
					}
					b.ResetTimer()
					for b.Loop() {
						handshake(b, srv, cli, mode == "Resumed")
					}
				})
			}
		})
	}
}

func handshake(b *testing.B, srvCfg, cliCfg *tls.Config, wantResume bool) {
	sc, cc := net.Pipe()
	srv, cli := tls.Server(sc, srvCfg), tls.Client(cc, cliCfg)
	errc := make(chan error, 1)
	go func() {
		err := srv.HandshakeContext(context.Background())
		if err == nil {
			_, err = srv.Write([]byte{1}) // carries the TLS 1.3 session ticket along
		}
		errc <- err
	}()
	if err := cli.HandshakeContext(context.Background()); err != nil {
		b.Fatal(err)
	}
	var one [1]byte
	if _, err := cli.Read(one[:]); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if cli.ConnectionState().DidResume != wantResume {
		b.Fatalf("DidResume = %v, want %v", cli.ConnectionState().DidResume, wantResume)
	}
	sc.Close()
	cc.Close()
}
