// Package cli is the command-line frame shared by the lpsec example
// binaries: flags that also read LPSEC_* environment variables, usage text
// that names those variables, and one mapping from errors to exit statuses.
//
// The command lines of the examples are contracts (integration tests of
// users' systems run them), so every binary gets the same rules:
//
//   - each binary reads its own environment namespace: a flag --foo-bar of
//     the server can also be set with LPSEC_SERVER_FOO_BAR (client:
//     LPSEC_CLIENT_, patchtool: LPSEC_PATCHTOOL_, contracts:
//     LPSEC_CONTRACTS_); the command line wins over the environment;
//   - a variable in the binary's namespace that names no flag is an error
//     naming the closest valid one (a misspelt setting must not be
//     silently ignored);
//   - a secret --x can also be read from a file with --x-file;
//   - -h / --help prints usage and exits 0; --version prints the version;
//   - a usage error exits 2, any other failure exits 1, each with one line
//     "NAME: what went wrong" on stderr; a bad value names the flag (or
//     variable), the value and the expected form.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
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

// EnvName is the environment variable equivalent of a flag of the binary
// prog: ("server", "tls-cert") -> "LPSEC_SERVER_TLS_CERT".
func EnvName(prog, flagName string) string {
	return EnvPrefix(prog) + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// EnvPrefix is the environment namespace of a binary: the first word of
// its flag set's name ("client enable" -> "LPSEC_CLIENT_").
func EnvPrefix(prog string) string {
	bin, _, _ := strings.Cut(prog, " ")
	return "LPSEC_" + strings.ToUpper(strings.ReplaceAll(bin, "-", "_")) + "_"
}

// ExitStatusHelp is the exit-status paragraph of every usage text.
const ExitStatusHelp = "exit status: 0 success, 1 failure, 2 usage error (unknown flag, bad value,\nunknown or bad environment variable)"

// noEnv names flags that have no environment variable.
var noEnv = map[string]bool{"version": true}

// envName is EnvName unless the flag has no variable ("" then).
func envName(fs *flag.FlagSet, f *flag.Flag) string {
	if noEnv[f.Name] && !strings.Contains(fs.Name(), " ") {
		return ""
	}
	return EnvName(fs.Name(), f.Name)
}

// NewFlagSet returns a flag set whose usage text lists each flag with its
// environment variable. name is the binary, then the subcommand if any
// ("client enable"); synopsis is the first usage line (without the program
// name); description follows it. A binary without subcommands gets
// --version; one with subcommands answers "PROG --version" in Dispatch
// (its subcommands' flags are their own: patchtool package --version is
// the patch's).
func NewFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if !strings.Contains(name, " ") {
		fs.Bool("version", false, "print the version and exit")
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s %s\n", name, synopsis)
		if description != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimRight(description, "\n"))
		}
		fmt.Fprintf(w, "\nflags (each also settable through the environment variable shown):\n")
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if typ != "" {
				head += " " + typ
			}
			if env := envName(fs, f); env == "" {
				fmt.Fprintf(w, "%s\n", head)
			} else {
				fmt.Fprintf(w, "%s  [$%s]\n", head, env)
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "      %s%s\n", strings.ReplaceAll(usage, "\n", "\n      "), def)
		})
		fmt.Fprintf(w, "\n%s\n", ExitStatusHelp)
	}
	return fs
}

// Version is the binary's version line: module version (or "devel"), VCS
// revision when known, and the Go version.
func Version(prog string) string {
	bin, _, _ := strings.Cut(prog, " ")
	v, rev := "devel", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " commit " + s.Value[:12]
			}
		}
		return fmt.Sprintf("lpsec %s %s%s (%s)", bin, v, rev, bi.GoVersion)
	}
	return fmt.Sprintf("lpsec %s %s", bin, v)
}

// Parse parses args, then fills every flag not given on the command line
// from its environment variable, if set. A bad value in the environment is
// a usage error naming the variable; so is a variable in the binary's
// namespace that names no flag.
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
	if err == nil && !strings.Contains(fs.Name(), " ") && isSet(fs, "version") {
		fmt.Fprintln(os.Stdout, Version(fs.Name()))
		return nil, flag.ErrHelp
	}
	if !positional && err == nil && fs.NArg() > 0 {
		return nil, Usagef("unexpected argument %q (see %s -h)", fs.Arg(0), fs.Name())
	}
	if err := parseRest(fs, err); err != nil {
		return nil, err
	}
	return pos, nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// badValue matches the flag package's "invalid value" error.
var badValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)$`)

// Expected is the form a flag's value must take, for error messages.
func Expected(f *flag.Flag) string {
	if e, ok := f.Value.(interface{ Expected() string }); ok {
		return e.Expected()
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return DurationHelp
	case bool:
		return "true or false"
	case int, int64:
		return "a whole number"
	case uint, uint64:
		return "a non-negative whole number"
	case float64:
		return "a number"
	}
	return ""
}

// explain turns the flag package's terse parse errors ("parse error")
// into one naming the flag or variable, the value and the expected form.
func explain(fs *flag.FlagSet, err error, env string) error {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil {
		if env != "" {
			return Usagef("invalid value in $%s: %v", env, err)
		}
		return Usagef("%v (see %s -h)", err, fs.Name())
	}
	value, name, why := m[1], m[2], m[3]
	f := fs.Lookup(name)
	if f == nil {
		return Usagef("%v (see %s -h)", err, fs.Name())
	}
	where := "--" + name
	if env != "" {
		where = "$" + env
	}
	msg := fmt.Sprintf("%s: invalid value %q", where, value)
	if _, isSecret := f.Value.(*secretValue); isSecret && !strings.HasSuffix(name, "-file") {
		msg = where + ": invalid value" // never echo a secret
	}
	if why != "parse error" && !strings.HasSuffix(why, "invalid syntax") && !strings.HasSuffix(why, "value out of range") {
		msg += ": " + why
	}
	if e := Expected(f); e != "" {
		msg += "; want " + e
	}
	return &UsageError{Msg: msg}
}

func parseRest(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return explain(fs, err, "")
	}
	if err := checkEnvNames(fs); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(fs, f)
		if set[f.Name] || envErr != nil || name == "" {
			return
		}
		v, ok := os.LookupEnv(name)
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
			envErr = explain(fs, fmt.Errorf("invalid value %q for flag -%s: %w", v, f.Name, err), name)
		}
	})
	return envErr
}

// checkEnvNames refuses a variable in the binary's namespace that names
// no flag. A binary with subcommands ("client enable") shares one
// namespace between them, so there only a near miss of this subcommand's
// flags is refused: a variable meant for another subcommand is not an
// error.
func checkEnvNames(fs *flag.FlagSet) error {
	prefix := EnvPrefix(fs.Name())
	valid := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if env := envName(fs, f); env != "" {
			valid[env] = true
		}
	})
	sub := strings.Contains(fs.Name(), " ")
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, prefix) && !valid[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		best, dist := "", 1<<30
		for v := range valid {
			if d := editDistance(name, v); d < dist || d == dist && v < best {
				best, dist = v, d
			}
		}
		if sub && dist > 2 {
			continue
		}
		if best != "" && dist <= max(3, len(name)/3) {
			return Usagef("unknown environment variable $%s: did you mean $%s? (see %s -h)", name, best, fs.Name())
		}
		return Usagef("unknown environment variable $%s: %s has no such setting (see %s -h)", name, fs.Name(), fs.Name())
	}
	return nil
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Secret registers a secret flag --name and its file form --name-file
// (the file's content, one trailing newline removed). Giving both, on the
// command line or in the environment, is a usage error: which one wins
// would otherwise be a surprise.
func Secret(fs *flag.FlagSet, p *string, name, usage string) {
	s := &secret{p: p, name: name}
	fs.Var(&secretValue{s: s}, name, usage+"\n(secret: prefer --"+name+"-file or the environment; command lines are visible to other local users)")
	fs.Var(&secretValue{s: s, file: true}, name+"-file", "`file` holding --"+name)
}

type secret struct {
	p    *string
	name string
	from string // "--x" or "--x-file", once set
}

type secretValue struct {
	s    *secret
	file bool
}

func (v *secretValue) String() string { return "" } // never print a secret as a default

func (v *secretValue) Set(val string) error {
	from := "--" + v.s.name
	if v.file {
		from += "-file"
	}
	if v.s.from != "" && v.s.from != from {
		return fmt.Errorf("give %s or %s, not both", v.s.from, from)
	}
	v.s.from = from
	if !v.file {
		*v.s.p = val
		return nil
	}
	b, err := os.ReadFile(val)
	if err != nil {
		return fmt.Errorf("reading the secret: %w", err)
	}
	*v.s.p = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return nil
}

func (v *secretValue) Expected() string {
	if v.file {
		return "a readable file"
	}
	return ""
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
		fmt.Fprintf(w, "\nRun %s COMMAND -h for the flags of a command; %s --version prints the version.\n\n%s\n", prog, prog, ExitStatusHelp)
	}
	if len(args) == 0 {
		usage(os.Stderr)
		return Usagef("missing command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return flag.ErrHelp
	case "-version", "--version", "version":
		fmt.Fprintln(os.Stdout, Version(prog))
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
