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

	DatabaseURL string
	RootKeyKEK  string

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

	MaxPatchSize int64
	LogLevel     string
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
	fs.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL `URL` (postgres://...) for tokens, macaroon root keys, patches and reports;\nwithout it everything is kept in memory (patch files in --state-dir) and lost on restart")
	fs.StringVar(&o.RootKeyKEK, "root-key-kek", "", "key-encryption `key` for macaroon root keys in PostgreSQL: base64 of 32 bytes\n(`openssl rand -base64 32`); required with --database-url, the same on every instance.\nSecret: prefer the environment variable, command lines are visible to other local users")
	fs.Var(&o.SigningCerts, "signing-cert", "certificate `file` (PEM) uploaded and synced patches must be signed by; repeatable")
	fs.StringVar(&o.ContractsURL, "contracts-url", "", "https `URL` of the entitlement (contracts) service that discharges resource macaroons")
	fs.StringVar(&o.ContractsPublicKey, "contracts-public-key", "", "the entitlement service's public `key` (base64, as its /publickey shows), pinned")
	fs.StringVar(&o.IdentityURL, "identity-url", "", "https `URL` of an identity service (single sign-on) whose discharges name admins\nwho log in at POST /v1/admin/login/identity; they must still be in the admin users")
	fs.StringVar(&o.IdentityPublicKey, "identity-public-key", "", "the identity service's public `key` (base64, as its /publickey shows), pinned")
	fs.StringVar(&o.ReportKey, "report-key", "", "deployment `keys` clients hash machine IDs under, as ID:HEX (HEX: at least 32 bytes);\ncomma-separated, current key first, then previous ones still accepted.\nWithout it machine reports are refused. Secret: prefer the environment variable")
	fs.StringVar(&o.UpstreamURL, "upstream-url", "", "https `URL` of an upstream server to pull patches from (verified before they are served)")
	fs.StringVar(&o.UpstreamSyncToken, "upstream-sync-token", "", "sync `token` issued by the upstream server's admin (secret: prefer the environment variable)")
	fs.StringVar(&o.UpstreamCACerts, "upstream-ca-certs", "", "extra CA certificates `file` (PEM) for the upstream server")
	fs.DurationVar(&o.SyncInterval, "sync-interval", time.Hour, "how often to pull from --upstream-url ("+cli.DurationHelp+")")
	fs.Int64Var(&o.MaxPatchSize, "max-patch-size", 64<<20, "largest patch tarball accepted, in `bytes`")
	fs.StringVar(&o.LogLevel, "log-level", "info", "`level` of the JSON log on stderr: debug, info, warn or error")
}
