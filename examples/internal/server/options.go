package server

import (
	"flag"
	"time"

	"github.com/lpsec/lpsec/examples/internal/cli"
)

// Options are the server's settings; the binary fills them from flags and
// LPSEC_* variables, the demo sets them directly.
type Options struct {
	Listen    string
	PublicURL string
	StateDir  string

	TLSCert, TLSKey string

	AdminUsers     string
	AdminUsersFile string
	AdminTTL       time.Duration

	OIDCIssuer, OIDCClientID, OIDCAdminClaim, OIDCCACerts string

	DatabaseURL string
	RootKeyKEK  string
	// DatabaseTimeout bounds each database call (zero: 2 s).
	DatabaseTimeout time.Duration
	// TokenCacheTTL enables token.WithAuthCache on PostgreSQL (zero: off);
	// the cache answers only while database notifications flow.
	TokenCacheTTL time.Duration
	// RevocationCacheTTL enables the PostgreSQL revocation store's
	// snapshot cache (macaroon.WithCacheTTL; zero: off, every admin
	// request asks the database).
	RevocationCacheTTL time.Duration

	SigningCerts cli.StringList

	ContractsURL       string
	ContractsPublicKey string

	IdentityURL       string
	IdentityPublicKey string

	ReportKey string

	UpstreamURL       string
	UpstreamSyncToken string
	UpstreamCACerts   string
	SyncInterval      time.Duration

	// TLSHostnames are extra names and addresses for the generated TLS
	// certificate.
	TLSHostnames cli.StringList

	// SyncAllowOrigins are origins besides the upstream's that patch URLs
	// of its listing may point to; SyncMaxPatches and SyncMaxBytes bound
	// what one sync fetches.
	SyncAllowOrigins cli.StringList
	SyncMaxPatches   int
	SyncMaxBytes     int64

	// ShutdownTimeout is how long SIGTERM lets requests in flight finish
	// (the binary's; Close takes a context).
	ShutdownTimeout time.Duration
	// MetricsListen is the address of the Prometheus listener; empty: off.
	MetricsListen string

	MaxPatchSize int64
	LogLevel     string

	// MaxConns and MaxConnsPerAddr bound the open client connections
	// (0: automatic, see the flags); ProbeAddrs (IPs or CIDRs) may still
	// reach /healthz and /readyz beyond them.
	MaxConns        int
	MaxConnsPerAddr int
	ProbeAddrs      cli.StringList

	// PutStepHook, when set, is called after each step of an upload into
	// the file store (no --database-url) with the step's name, one of
	// PutSteps: the crash tests kill the process there. Not a flag.
	PutStepHook func(step string)

	// LogRepeatInterval: repeated warnings and errors are logged once per
	// interval with a count (internal/ratelog); used by cmd server.
	LogRepeatInterval time.Duration
}

// RegisterFlags binds o to fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8443", "`address` to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&o.PublicURL, "public-url", "", "https `URL` clients reach this server at, used in patch URLs\n(default https://LISTEN-ADDRESS)")
	fs.StringVar(&o.StateDir, "state-dir", "lpsec-server-state", "`directory` for the generated CA and server certificate, the macaroon key pair and,\nwithout --database-url, the patch files")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "server certificate chain `file` (PEM); without it and --tls-key a CA and a certificate\nare created in --state-dir and the CA's path is printed")
	fs.StringVar(&o.TLSKey, "tls-key", "", "server private key `file` (PEM)")
	fs.StringVar(&o.AdminUsers, "admin-users", "", "admin users as `user:hash,...` (bcrypt $2y$10$... from `htpasswd -nbBC 10`, or argon2id PHC)")
	fs.StringVar(&o.AdminUsersFile, "admin-users-file", "", "admin users as an htpasswd `file` (bcrypt or argon2id hashes only)")
	fs.DurationVar(&o.AdminTTL, "admin-macaroon-ttl", 8*time.Hour, "lifetime of admin macaroons from /v1/admin/login (at most 240h; POST /v1/admin/logout ends one sooner)")
	fs.StringVar(&o.OIDCIssuer, "oidc-issuer", "", "https `URL` of an OpenID Connect provider whose ID tokens log admins in\n(POST /v1/admin/login with \"Authorization: Bearer ID-TOKEN\", beside Basic)")
	fs.StringVar(&o.OIDCClientID, "oidc-client-id", "", "the `client ID` ID tokens must be issued to (their audience)")
	fs.StringVar(&o.OIDCAdminClaim, "oidc-admin-claim", "", "`CLAIM=VALUE` granting admin rights, as groups=lpsec-admins (the claim is that string\nor an array holding it); the admin is ISSUER#SUBJECT, never a display name")
	fs.StringVar(&o.OIDCCACerts, "oidc-ca-certs", "", "extra CA certificates `file` (PEM) for the OpenID provider")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL `URL` (postgres://...) for tokens, macaroon root keys, patches and reports;\nwithout it patches persist in --state-dir (crash-safe) and the rest is kept in memory, lost on restart")
	cli.Secret(fs, &o.RootKeyKEK, "root-key-kek", "key-encryption `key` for macaroon root keys in PostgreSQL: base64 of 32 bytes\n(`openssl rand -base64 32`); required with --database-url, the same on every instance")
	fs.Var(&o.SigningCerts, "signing-cert", "certificate `file` (PEM) uploaded and synced patches must be signed by; repeatable")
	fs.StringVar(&o.ContractsURL, "contracts-url", "", "https `URL` of the entitlement (contracts) service that discharges resource macaroons")
	fs.StringVar(&o.ContractsPublicKey, "contracts-public-key", "", "the entitlement service's public `key` (base64, as its /publickey shows), pinned")
	fs.StringVar(&o.IdentityURL, "identity-url", "", "https `URL` of an identity service (single sign-on) whose discharges name admins\nwho log in at POST /v1/admin/login/identity; they must still be in the admin users")
	fs.StringVar(&o.IdentityPublicKey, "identity-public-key", "", "the identity service's public `key` (base64, as its /publickey shows), pinned")
	cli.Secret(fs, &o.ReportKey, "report-key", "deployment `keys` clients hash machine IDs under, as ID:HEX (HEX: at least 32 bytes);\ncomma-separated, current key first, then previous ones still accepted.\nWithout it machine reports are refused")
	fs.StringVar(&o.UpstreamURL, "upstream-url", "", "https `URL` of an upstream server to pull patches from (verified before they are served)")
	cli.Secret(fs, &o.UpstreamSyncToken, "upstream-sync-token", "sync `token` issued by the upstream server's admin")
	fs.StringVar(&o.UpstreamCACerts, "upstream-ca-certs", "", "extra CA certificates `file` (PEM) for the upstream server")
	fs.DurationVar(&o.SyncInterval, "sync-interval", time.Hour, "how often to pull from --upstream-url ("+cli.DurationHelp+")")
	fs.Var(&o.SyncAllowOrigins, "sync-allow-origin", "https `origin` (https://HOST[:PORT]) besides --upstream-url's that the upstream's patch URLs\nmay point to; repeatable. Patch URLs elsewhere are skipped and never contacted")
	fs.IntVar(&o.SyncMaxPatches, "sync-max-patches", DefaultSyncMaxPatches, "most new patches one sync fetches (the rest wait for the next sync)")
	fs.Int64Var(&o.SyncMaxBytes, "sync-max-bytes", DefaultSyncMaxBytes, "most `bytes` one sync downloads")
	fs.Var(&o.TLSHostnames, "tls-hostnames", "extra `names` (DNS names or IP addresses) for the generated TLS certificate;\nrepeatable (comma-separated in the environment)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 5*time.Minute, "how long SIGTERM lets requests in flight (downloads included) finish\nbefore cutting them ("+cli.DurationHelp+")")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "`address` (host:port) of a plain-HTTP listener serving Prometheus metrics at /metrics;\noff when empty. Keep it on a private interface")
	fs.Int64Var(&o.MaxPatchSize, "max-patch-size", 64<<20, "largest patch tarball accepted, in `bytes`")
	fs.IntVar(&o.MaxConns, "max-conns", 0, "most open client connections; at the limit the idle keep-alive connection of the\naddress holding the most is closed first, and a new one is refused only when none is idle\n(default 0: three quarters of the open-file limit, at most 10000)")
	fs.IntVar(&o.MaxConnsPerAddr, "max-conns-per-addr", 0, "most open connections from one IPv4 address or IPv6 /64 (default 0: a quarter of --max-conns)")
	fs.Var(&o.ProbeAddrs, "probe-addr", "`address` or CIDR of health probes: beyond the connection limits it may still open a few\nconnections, which serve only /healthz and /readyz; repeatable")
	fs.StringVar(&o.LogLevel, "log-level", "info", "`level` of the JSON log on stderr: debug, info, warn or error")
	fs.DurationVar(&o.LogRepeatInterval, "log-repeat-interval", 10*time.Second, "repeated warnings and errors (same event, reason and message) are logged once per `interval`\nwith a count (\"suppressed\"); refused credentials once per source and interval, up to 3")
	fs.DurationVar(&o.TokenCacheTTL, "token-cache-ttl", 0, "with --database-url, answer a machine token's authentication from memory for up to this\n`duration` (at most 1m; 0: off), only while database notifications flow: a revocation through\nanother instance evicts it as soon as notified ("+cli.DurationHelp+")")
	fs.DurationVar(&o.RevocationCacheTTL, "revocation-cache-ttl", 0, "with --database-url, answer admin-macaroon revocation checks from memory: while database\nnotifications flow, from a snapshot kept until a revocation is notified; otherwise from one up to\nthis `duration` old (at most 1m; 0: off, every check asks the database) ("+cli.DurationHelp+")")
	fs.DurationVar(&o.DatabaseTimeout, "database-timeout", 2*time.Second, "bound on each PostgreSQL call: past it the request fails with 503 ("+cli.DurationHelp+")")
}
