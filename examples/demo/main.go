// Command demo walks the whole story of a live-patch deployment on
// loopback, with real TLS, real signatures and real HTTP between the
// parties, and checks every outcome:
//
//	go run ./examples/demo
//
// It creates a CA, certificates, a patch-signing key and the entitlement
// service's key pair in a temporary directory, starts the entitlement
// service, an OpenID provider (for the admin's SSO login) and two servers
// (in this process, each on its own TLS listener), and runs clients and an
// admin against them. It exits 0 only if every step
// behaved as expected, and removes everything it made.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/logx"
)

func main() {
	cli.Main("demo", func(ctx context.Context, args []string) error {
		fs := cli.NewFlagSet("demo", "[flags]", "Runs the lpsec live-patch story on loopback and checks every step. No arguments needed.")
		keep := fs.Bool("keep", false, "keep the temporary directory (keys, certificates, state, logs)")
		verbose := fs.Bool("verbose", false, "show the servers' JSON security events on stderr")
		if err := cli.Parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return cli.Usagef("demo takes no arguments")
		}
		return run(ctx, os.Stdout, *keep, *verbose)
	})
}

func run(ctx context.Context, out io.Writer, keep, verbose bool) error {
	dir, err := os.MkdirTemp("", "lpsec-demo-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(out, "keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	logw := io.Discard
	if verbose {
		logw = os.Stderr
	}
	logf, err := os.OpenFile(dir+"/events.jsonl", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	log, _ := logx.NewLogger(io.MultiWriter(logw, logf), "info")
	d := &demo{dir: dir, out: out, log: log, st: newSteps(out), logFile: dir + "/events.jsonl"}
	defer d.cleanup()
	fmt.Fprintf(out, "lpsec demo: a live-patch deployment on loopback (work dir %s)\n\n", dir)
	d.story(ctx)
	return d.st.summary()
}
