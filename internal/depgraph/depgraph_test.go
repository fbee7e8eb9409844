package depgraph

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lpsec/lpsec"

// The six public packages: none may import another (internal/ is where
// what two of them share goes).
var six = []string{"auth", "macaroon", "token", "report", "patchverify", "tlsconfig"}

// What must not link a database driver or database/sql: the six packages
// (importing token or macaroon for their memory stores must stay
// driver-free; the PostgreSQL stores are in token/tokenpg and
// macaroon/macaroonpg) and the example binaries that have no database.
var noDatabase = []string{
	"auth", "macaroon", "token", "report", "patchverify", "tlsconfig",
	"examples/client", "examples/contracts", "examples/patchtool",
}

// The PostgreSQL stores take a *sql.DB: they may use database/sql but
// register no driver themselves (the program links and registers it). They
// do link pgx's client library, which they require anyway: following
// table changes (LISTEN, internal/pgnotify) needs the pgx connection under
// database/sql's.
var storesWithoutDriver = []string{"token/tokenpg", "macaroon/macaroonpg"}

// The OpenID Connect verifier lives in auth/oidc so that importing auth
// for Basic links no JOSE or OAuth library.
var oidcLibraries = []string{"github.com/coreos/go-oidc/", "github.com/go-jose/", "golang.org/x/oauth2"}

// driverPrefixes are import paths of database/sql drivers and their
// client libraries.
var driverPrefixes = []string{
	"github.com/jackc/", // pgx, pgconn, pgtype, puddle...
	"github.com/lib/pq",
	"github.com/go-sql-driver/",
	"github.com/mattn/go-sqlite3",
	"modernc.org/sqlite",
	"github.com/microsoft/go-mssqldb",
	"github.com/denisenkom/go-mssqldb",
	"github.com/sijms/go-ora",
	"github.com/ClickHouse/",
	"github.com/godror/",
}

// pgxRegistration is the package that registers pgx with database/sql.
const pgxRegistration = "github.com/jackc/pgx/v5/stdlib"

type pkg struct {
	ImportPath string
	Deps       []string
}

// list runs `go list -deps -json` on the module's packages and returns,
// for each named package, the set of packages it links (tests excluded).
func list(t *testing.T, rel ...string) map[string]map[string]bool {
	t.Helper()
	// go test runs with the go command's own directory first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list dependencies: %v", err)
	}
	args := []string{"list", "-json=ImportPath,Deps"}
	for _, r := range rel {
		args = append(args, module+"/"+r)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = "../.." // the module root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	res := map[string]map[string]bool{}
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		deps := map[string]bool{}
		for _, d := range p.Deps {
			deps[d] = true
		}
		res[strings.TrimPrefix(p.ImportPath, module+"/")] = deps
	}
	for _, r := range rel {
		if res[r] == nil {
			t.Fatalf("go list did not report %s", r)
		}
	}
	return res
}

func isDriver(path string) bool {
	for _, p := range driverPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// TestSixPackagesAreIndependent: none of auth, macaroon, token, report,
// patchverify, tlsconfig (nor their subpackages, such as token/tokenpg)
// links another of them.
func TestSixPackagesAreIndependent(t *testing.T) {
	all := append(append([]string{}, six...), storesWithoutDriver...)
	all = append(all, "auth/oidc")
	graph := list(t, all...)
	for _, p := range all {
		own := strings.SplitN(p, "/", 2)[0]
		for d := range graph[p] {
			rest, ok := strings.CutPrefix(d, module+"/")
			if !ok {
				continue
			}
			top := strings.SplitN(rest, "/", 2)[0]
			if top == own || top == "internal" {
				continue
			}
			t.Errorf("%s imports %s: the six packages must not import each other (share through internal/)", p, d)
		}
	}
}

// TestNoDatabaseDriver: packages and binaries that have no database link no
// driver and no database/sql; the PostgreSQL stores link database/sql and
// pgx's client library, but no other driver and nothing that registers one.
func TestNoDatabaseDriver(t *testing.T) {
	graph := list(t, append(append([]string{}, noDatabase...), storesWithoutDriver...)...)
	for _, p := range noDatabase {
		for d := range graph[p] {
			if isDriver(d) || d == "database/sql" {
				t.Errorf("%s links %s; it has no database", p, d)
			}
		}
	}
	for _, p := range storesWithoutDriver {
		for d := range graph[p] {
			if d == pgxRegistration || isDriver(d) && !strings.HasPrefix(d, "github.com/jackc/") {
				t.Errorf("%s links the driver package %s; the program registers the driver", p, d)
			}
		}
		if !graph[p]["database/sql"] {
			t.Errorf("%s does not link database/sql: is it still the PostgreSQL store?", p)
		}
	}
}

// TestPatchtoolLinksNoMacaroon: the patch tool signs and checks patches; it
// must not link the macaroon library (or the bakery) through a shared
// examples package.
func TestPatchtoolLinksNoMacaroon(t *testing.T) {
	graph := list(t, "examples/patchtool")
	for d := range graph["examples/patchtool"] {
		if strings.HasPrefix(d, module+"/macaroon") || strings.HasPrefix(d, "github.com/go-macaroon-bakery/") || strings.HasPrefix(d, "gopkg.in/macaroon") {
			t.Errorf("examples/patchtool links %s", d)
		}
	}
	for _, b := range []string{"examples/client", "examples/contracts"} {
		for d := range list(t, b)[b] {
			if d == module+"/examples/internal/server" {
				t.Errorf("%s links the example server", b)
			}
		}
	}
}

// TestAuthLinksNoOIDC: auth (Basic) links neither go-oidc, go-jose nor
// x/oauth2, nor auth/oidc; auth/oidc links those three and the standard
// library only, not the test provider (zitadel) its tests run.
func TestAuthLinksNoOIDC(t *testing.T) {
	graph := list(t, "auth", "auth/oidc")
	for d := range graph["auth"] {
		if d == module+"/auth/oidc" || hasPrefix(d, oidcLibraries) {
			t.Errorf("auth links %s; OpenID Connect belongs to auth/oidc", d)
		}
	}
	for d := range graph["auth/oidc"] {
		first := strings.SplitN(d, "/", 2)[0]
		if !strings.Contains(first, ".") || strings.HasPrefix(d, module+"/internal/") {
			continue // standard library (and what it vendors)
		}
		if !hasPrefix(d, oidcLibraries) {
			t.Errorf("auth/oidc links %s: it needs only go-oidc, go-jose and x/oauth2", d)
		}
	}
	for _, lib := range []string{"github.com/coreos/go-oidc/v3/oidc", "github.com/go-jose/go-jose/v4"} {
		if !graph["auth/oidc"][lib] {
			t.Errorf("auth/oidc does not link %s: is it still built on it?", lib)
		}
	}
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
