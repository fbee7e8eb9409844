// Command slowread opens N concurrent HTTPS downloads of one URL and reads
// each at a limited rate for a fixed time, as slow or hostile clients do;
// bench/mem.sh measures the server's memory meanwhile. It prints how many
// downloads were open at the end and the bytes read.
//
//	slowread -n 300 -rate 32768 -for 20s -ca ca.pem https://127.0.0.1:8443/v1/patches/x.tar
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 300, "concurrent downloads")
	rate := flag.Int("rate", 32<<10, "bytes per second each download reads")
	dur := flag.Duration("for", 20*time.Second, "how long the downloads stay open")
	ca := flag.String("ca", "", "CA certificate file (PEM)")
	flag.Parse()
	if flag.NArg() != 1 || *ca == "" {
		fmt.Fprintln(os.Stderr, "usage: slowread [-n N] [-rate B/s] [-for D] -ca CA.pem URL")
		os.Exit(2)
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// A small receive buffer: the server's bytes wait in its own memory
	// (or are not read yet), not in this process's socket.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 0, MaxIdleConnsPerHost: *n}
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var open, failed atomic.Int64
	var firstErr sync.Once
	fail := func(why string) {
		failed.Add(1)
		firstErr.Do(func() { fmt.Fprintln(os.Stderr, "slowread: first failure:", why) })
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, flag.Arg(0), nil)
			resp, err := hc.Do(req)
			if err != nil {
				fail(err.Error())
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fail(resp.Status)
				return
			}
			open.Add(1)
			buf := make([]byte, 4096)
			tick := time.NewTicker(time.Second * time.Duration(len(buf)) / time.Duration(*rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				k, err := io.ReadFull(resp.Body, buf)
				total.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("downloads opened %d, failed %d, bytes read %d\n", open.Load(), failed.Load(), total.Load())
}
