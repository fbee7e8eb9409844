// Package cli is the command-line frame shared by the lpsec example
// binaries: flags that also read LPSEC_* environment variables, usage text
// that names those variables, and one mapping from errors to exit statuses.
//
// The command lines of the examples are contracts (integration tests of
// users' systems run them), so every binary gets the same rules:
//
//   - a flag --foo-bar can also be set with LPSEC_FOO_BAR; the command line
//     wins over the environment;
//   - -h / --help prints usage and exits 0;
//   - a usage error exits 2, any other failure exits 1, each with one line
//     "NAME: what went wrong" on stderr.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit statuses shared by all example binaries.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is a mistake on the command line (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitError carries an explicit exit status (patchtool verify uses 1 for
// "signature invalid" and 2 for I/O errors).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by a command to its exit status.
func ExitCode(err error) int {
	var ee *ExitError
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// EnvName is the environment variable equivalent of a flag:
// "tls-cert" -> "LPSEC_TLS_CERT".
func EnvName(flagName string) string {
	return "LPSEC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// NewFlagSet returns a flag set whose usage text lists each flag with its
// environment variable. synopsis is the first usage line (without the
// program name); description follows it.
func NewFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s %s\n", name, synopsis)
		if description != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimRight(description, "\n"))
		}
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if !any {
			return
		}
		fmt.Fprintf(w, "\nflags (each also settable through the environment variable shown):\n")
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if typ != "" {
				head += " " + typ
			}
			fmt.Fprintf(w, "%s  [$%s]\n", head, EnvName(f.Name))
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "      %s%s\n", strings.ReplaceAll(usage, "\n", "\n      "), def)
		})
	}
	return fs
}

// Parse parses args, then fills every flag not given on the command line
// from its LPSEC_* variable, if set. A bad value in the environment is a
// usage error naming the variable.
func Parse(fs *flag.FlagSet, args []string) error {
	_, err := ParseInterleaved(fs, args, false)
	return err
}

// ParseInterleaved is Parse for commands with positional arguments, which
// may come before, between or after the flags ("sign --key K MODULE -o
// OUT"); "--" ends the flags. It returns the positional arguments.
func ParseInterleaved(fs *flag.FlagSet, args []string, positional bool) ([]string, error) {
	var pos []string
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	for err == nil && positional && fs.NArg() > 0 {
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		err = fs.Parse(rest[1:])
	}
	fs.SetOutput(os.Stderr)
	if !positional && err == nil && fs.NArg() > 0 {
		return nil, Usagef("unexpected argument %q (see %s -h)", fs.Arg(0), fs.Name())
	}
	if err := parseRest(fs, err); err != nil {
		return nil, err
	}
	return pos, nil
}

func parseRest(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return Usagef("%v (see %s -h)", err, fs.Name())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if lv, isList := f.Value.(*StringList); isList {
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*lv = append(*lv, part)
				}
			}
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = Usagef("invalid value in $%s: %v", EnvName(f.Name), err)
		}
	})
	return envErr
}

// StringList is a repeatable flag; from the environment it is
// comma-separated.
type StringList []string

func (l *StringList) String() string     { return strings.Join(*l, ",") }
func (l *StringList) Set(v string) error { *l = append(*l, v); return nil }

// Main runs a command with a context cancelled by SIGINT/SIGTERM and exits
// with the status ExitCode gives, printing the error on stderr.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(ExitCode(err))
}

// Subcommand is one verb of a multi-command binary (client, patchtool).
type Subcommand struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string) error
}

// Dispatch runs the subcommand named by args[0], or prints the list.
func Dispatch(ctx context.Context, prog, summary string, cmds []Subcommand, args []string) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s COMMAND [flags] [args]\n\n%s\n\ncommands:\n", prog, summary)
		for _, c := range cmds {
			fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintf(w, "\nRun %s COMMAND -h for the flags of a command.\n", prog)
	}
	if len(args) == 0 {
		usage(os.Stderr)
		return Usagef("missing command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return flag.ErrHelp
	}
	for _, c := range cmds {
		if c.Name == args[0] {
			return c.Run(ctx, args[1:])
		}
	}
	return Usagef("unknown command %q (see %s -h)", args[0], prog)
}

// DurationFlag documents the accepted format once.
const DurationHelp = "a Go duration such as 30s, 5m or 240h"

// Positive checks a duration flag.
func Positive(name string, d time.Duration) error {
	if d <= 0 {
		return Usagef("--%s must be positive, got %v", name, d)
	}
	return nil
}
