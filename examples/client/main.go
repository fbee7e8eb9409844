// Command client is the example live-patch client. It registers the
// machine, downloads patches and checks their SHA-256 and then their module
// signature against pinned certificates before placing the verified module
// in --state-dir. It never loads anything into a kernel.
//
//	go run ./examples/client enable --remote-server https://127.0.0.1:8443 --ca-certs ca.pem TOKEN
//	go run ./examples/client refresh --signing-cert signing-cert.pem --tls-patch-download
//	go run ./examples/client report --report-key k1:HEX
//	go run ./examples/client status
//	go run ./examples/client machine-id --app-specific APPID
//
// Flags have LPSEC_CLIENT_* equivalents (--remote-server is
// LPSEC_CLIENT_REMOTE_SERVER); --report-key can be read from a file
// (--report-key-file).
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
	"github.com/lpsec/lpsec/examples/internal/client"
	"github.com/lpsec/lpsec/examples/internal/ident"
	"github.com/lpsec/lpsec/examples/internal/logx"
	"github.com/lpsec/lpsec/report"
)

func main() {
	cli.Main("client", func(ctx context.Context, args []string) error {
		return cli.Dispatch(ctx, "client", "client: the lpsec example live-patch client (never loads anything into a kernel)", []cli.Subcommand{
			{Name: "enable", Summary: "register this machine with a registration token (or --contract TOKEN)", Run: enable},
			{Name: "status", Summary: "show the registration, the placed patch and whether the server accepts the machine token", Run: status},
			{Name: "refresh", Summary: "list, download and verify (hash, then signature) the patch for this kernel", Run: refresh},
			{Name: "report", Summary: "send a machine report with the machine ID hashed under --report-key", Run: sendReport},
			{Name: "machine-id", Summary: "print the app-specific machine ID, as systemd-id128 machine-id --app-specific does", Run: machineID},
		}, args)
	})
}

type common struct {
	cfg          client.Config
	signingCerts cli.StringList
	logLevel     string
	timeout      time.Duration
}

// DefaultTimeout bounds a whole command: a server that answers one byte at
// a time cannot hold the client longer.
const DefaultTimeout = 5 * time.Minute

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.cfg.RemoteServer, "remote-server", "", "https `URL` of the live-patch server (saved by enable)")
	fs.StringVar(&c.cfg.CACerts, "ca-certs", "", "extra CA certificates `file` (PEM), added to the system pool")
	fs.StringVar(&c.cfg.HTTPProxy, "http-proxy", "", "proxy `URL` for http requests (default: $http_proxy)")
	fs.StringVar(&c.cfg.HTTPSProxy, "https-proxy", "", "proxy `URL` for https requests (default: $https_proxy); an https proxy is verified too")
	fs.StringVar(&c.cfg.NoProxy, "no-proxy", "", "comma-separated `hosts` reached without proxy")
	fs.BoolVar(&c.cfg.TLSPatchDownload, "tls-patch-download", false, "refuse any patch URL that is not https, before connecting")
	fs.DurationVar(&c.cfg.DialTimeout, "dial-timeout", 12*time.Second, "TCP connect timeout")
	fs.StringVar(&c.cfg.StateDir, "state-dir", "lpsec-client-state", "`directory` for the machine token (0600) and verified modules")
	fs.StringVar(&c.cfg.MachineIDFile, "machine-id-file", "", "machine-id `file` (default /etc/machine-id, then /var/lib/dbus/machine-id)")
	fs.StringVar(&c.cfg.Kernel, "kernel", "", "kernel `release` to ask patches for (default: uname -r)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "`level` of the JSON log on stderr")
	fs.DurationVar(&c.timeout, "timeout", DefaultTimeout, "overall `deadline` of the command, on top of --dial-timeout")
}

// run runs a command's work under --timeout and adds the client's hints to
// its error.
func (c *common) run(ctx context.Context, f func(context.Context) error) error {
	if c.timeout <= 0 {
		return cli.Usagef("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := f(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("gave up after --timeout %v: %w", c.timeout, err)
	}
	return client.Hint(err)
}

// isTerminal reports whether f is a character device (a terminal): progress
// is shown only there.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (c *common) client() (*client.Client, error) {
	log, err := logx.NewLogger(os.Stderr, c.logLevel)
	if err != nil {
		return nil, cli.Usagef("--log-level: %v", err)
	}
	c.cfg.Logger = log
	c.cfg.SigningCerts = c.signingCerts
	return client.New(c.cfg)
}

func enable(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("client enable", "[flags] TOKEN", "Registers this machine. TOKEN is a registration token from the server's admin, or\nwith --contract a contract token that the entitlement service (--contracts-url)\nchecks before discharging the server's resource macaroon.")
	c.flags(fs)
	contract := fs.Bool("contract", false, "TOKEN is a contract token for the entitlement service")
	fs.StringVar(&c.cfg.ContractsURL, "contracts-url", "", "https `URL` of the entitlement service (the only third party contacted)")
	pos, err := cli.ParseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usagef("enable needs exactly one TOKEN")
	}
	if c.cfg.RemoteServer == "" {
		return cli.Usagef("enable needs --remote-server")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	return c.run(ctx, func(ctx context.Context) error {
		var st *client.State
		if *contract {
			st, err = cl.EnableWithContract(ctx, pos[0])
		} else {
			st, err = cl.Enable(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		fmt.Printf("enabled: machine %s, tier %s, server %s\n", client.Safe(st.Machine), client.Safe(st.Tier), st.Server)
		return nil
	})
}

func status(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("client status", "[flags]", "Shows the saved registration and asks the server whether it still accepts the machine token.")
	c.flags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	st, err := cl.LoadState()
	if err != nil {
		return err
	}
	fmt.Printf("server: %s\nmachine: %s\ntier: %s\nregistered: %s\n", st.Server, client.Safe(st.Machine), client.Safe(st.Tier), st.Registered.Format(time.RFC3339))
	if !st.LastCheck.IsZero() {
		fmt.Printf("last check: %s\n", st.LastCheck.Format(time.RFC3339))
	}
	if st.Patch != nil {
		fmt.Printf("patch: %s version %s (sha256 %s, signed by %s) placed at %s, not loaded\n", client.Safe(st.Patch.Filename), client.Safe(st.Patch.Version), st.Patch.SHA256, client.Safe(st.Patch.Signer), st.Patch.Module)
	} else {
		fmt.Printf("patch: none\n")
	}
	if err := c.run(ctx, cl.CheckToken); err != nil {
		fmt.Printf("machine token: NOT accepted (%v)\n", err)
		return err
	}
	fmt.Printf("machine token: accepted\n")
	return nil
}

func refresh(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("client refresh", "[flags]", "Lists the patches for this kernel, downloads the newest, checks its SHA-256 and then\nits module signature against --signing-cert, and places the verified module in\n--state-dir/patches. Nothing is loaded into the kernel.")
	c.flags(fs)
	fs.Var(&c.signingCerts, "signing-cert", "pinned certificate `file` (PEM) patches must be signed by; repeatable")
	fs.BoolVar(&c.cfg.AllowRollback, "allow-rollback", false, "accept a patch not newer than the applied one (logged as a security event)")
	fs.BoolVar(&c.cfg.RequireCatalogue, "require-catalogue", false, "install only patches listed in the publisher's signed catalogue, refusing an expired or older one")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if isTerminal(os.Stdout) {
		c.cfg.Progress = os.Stdout
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	return c.run(ctx, func(ctx context.Context) error {
		p, err := cl.Refresh(ctx)
		if err != nil {
			return err
		}
		switch {
		case p == nil:
			fmt.Println("nothing to apply for this kernel")
		case p.Unchanged:
			fmt.Printf("up to date: %s version %s (sha256 %s) already placed at %s\n", client.Safe(p.Filename), client.Safe(p.Version), p.SHA256, p.Module)
		default:
			fmt.Printf("verified %s version %s: sha256 %s, signed by %s\nplaced at %s (not loaded)\n", client.Safe(p.Filename), client.Safe(p.Version), p.SHA256, client.Safe(p.Signer), p.Module)
		}
		return nil
	})
}

func sendReport(ctx context.Context, args []string) error {
	var c common
	fs := cli.NewFlagSet("client report", "[flags]", "Sends a machine report. The machine ID goes only as HMAC-SHA256 under --report-key.")
	c.flags(fs)
	cli.Secret(fs, &c.cfg.ReportKey, "report-key", "the deployment's report `key` as ID:HEX (HEX: at least 32 bytes)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var r *report.Report
	if err := c.run(ctx, func(ctx context.Context) (err error) { r, err = cl.Report(ctx); return err }); err != nil {
		return err
	}
	fmt.Printf("report sent: machine_id %s, patch_state %s\n", r.MachineID, r.PatchState)
	return nil
}

func machineID(_ context.Context, args []string) error {
	fs := cli.NewFlagSet("client machine-id", "--app-specific APPID [--machine-id-file F]", "Prints the app-specific machine ID for APPID (32 hex digits or a UUID): the same\nvalue as `systemd-id128 machine-id --app-specific=APPID`. Without --app-specific it\nprints the ID this client uses for itself (lpsec's app ID "+ident.AppID+").")
	app := fs.String("app-specific", "", "application `ID`")
	file := fs.String("machine-id-file", "", "machine-id `file` (default /etc/machine-id)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *app == "" {
		*app = ident.AppID
	}
	appID, err := ident.ParseAppID(*app)
	if err != nil {
		return cli.Usagef("--app-specific: %v", err)
	}
	mid, err := report.ReadMachineID(*file)
	if err != nil {
		return err
	}
	id, err := report.AppSpecificID(mid, appID)
	if err != nil {
		return err
	}
	fmt.Println(hex.EncodeToString(id[:]))
	return nil
}
