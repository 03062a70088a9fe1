package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// natsFlags are the connection settings every role shares: the servers,
// one authentication method and TLS, bound straight into a
// natsconn.Config, which does the rest ([natsFlags.config] adds the
// connection's name, the secrets to mask and the flag names).
//
// Authentication, at most one of: user and password (--nats-user with
// --nats-password or --nats-password-file, or user info in --nats-url),
// a token (--nats-token or --nats-token-file), an NKey seed file
// (--nats-nkey), or a .creds file holding a user JWT and its seed
// (--nats-creds). TLS is on when the URL scheme is tls:// or any of
// --nats-ca, --nats-cert/--nats-key (mutual TLS) or --nats-tls-server-name
// is set; the server's certificate is always verified.
type natsFlags struct {
	// cfg holds the flags; its ConnectTimeout (--connect-timeout) bounds
	// the first connection of a long-running role (see
	// [natsFlags.connectWait]); 0 waits for ever.
	cfg      natsconn.Config
	replicas int

	// log receives the WARN lines about risky settings (see
	// [riskySettings]); nil means JSON lines on stderr.
	log *zerolog.Logger
	s   *settings // the flag set the flags were registered on; nil in dev
}

// natsSecretFlags hold secrets: their values are never shown.
var natsSecretFlags = []string{"nats-password", "nats-token"}

// defaultNATSURL is the NATS server the commands connect to by default:
// the one `callcontrol dev` runs.
const defaultNATSURL = "nats://127.0.0.1:4222"

// register adds the connection flags every command that connects to NATS
// has.
func (n *natsFlags) register(s *settings, defURL string) {
	defer s.group(groupConnection)()
	n.s = s
	fs, c := s.fs, &n.cfg
	fs.StringVar(&c.URL, "nats-url", defURL, "NATS server URL(s), comma separated (tls:// turns TLS on)")
	fs.StringVar(&c.User, "nats-user", "", "NATS user name (with --nats-password-file or CALLCONTROL_NATS_PASSWORD)")
	fs.StringVar(&c.Password, "nats-password", "", "NATS password (a secret: prefer CALLCONTROL_NATS_PASSWORD or --nats-password-file)")
	fs.StringVar(&c.PasswordFile, "nats-password-file", "", "file holding the NATS password")
	fs.StringVar(&c.Token, "nats-token", "", "NATS authentication token (a secret: prefer CALLCONTROL_NATS_TOKEN or --nats-token-file)")
	fs.StringVar(&c.TokenFile, "nats-token-file", "", "file holding the NATS authentication token")
	fs.StringVar(&c.NKeyFile, "nats-nkey", "", "NATS NKey user seed file")
	fs.StringVar(&c.CredsFile, "nats-creds", "", "NATS credentials (.creds) file: user JWT and seed")
	fs.StringVar(&c.CAFile, "nats-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	fs.StringVar(&c.CertFile, "nats-cert", "", "client certificate (PEM) for mutual TLS with NATS (with --nats-key)")
	fs.StringVar(&c.KeyFile, "nats-key", "", "client key (PEM) for mutual TLS with NATS (with --nats-cert)")
	fs.StringVar(&c.TLSServerName, "nats-tls-server-name", "", "name expected in the NATS servers' certificates (default: the host of the URL)")
	s.secret(natsSecretFlags...)
}

// registerRole adds the flags only the long-running roles have, beside
// register's: --connect-timeout, as they wait for NATS at start (see
// [natsFlags.connectWait]), and --replicas, as they create the streams and
// buckets. The client commands create nothing, so they do not offer it.
func (n *natsFlags) registerRole(s *settings) {
	connection := s.group(groupConnection)
	s.fs.DurationVar(&n.cfg.ConnectTimeout, "connect-timeout", 0,
		"how long to retry the first NATS connection at start, with backoff (0 = for ever; a refused credential or certificate fails at once)")
	connection()
	s.fs.IntVar(&n.replicas, "replicas", 1, "replicas of streams and buckets created at start (3 on a cluster)")
	s.fieldFlags(map[string]string{"Replicas": "replicas"})
}

// natsFieldFlags names the flag of each natsconn.Config field.
var natsFieldFlags = map[natsconn.Field]string{
	natsconn.FieldURL: "nats-url", natsconn.FieldUser: "nats-user",
	natsconn.FieldPassword: "nats-password", natsconn.FieldPasswordFile: "nats-password-file",
	natsconn.FieldToken: "nats-token", natsconn.FieldTokenFile: "nats-token-file",
	natsconn.FieldNKeyFile: "nats-nkey", natsconn.FieldCredsFile: "nats-creds",
	natsconn.FieldCAFile: "nats-ca", natsconn.FieldCertFile: "nats-cert", natsconn.FieldKeyFile: "nats-key",
	natsconn.FieldTLSServerName: "nats-tls-server-name", natsconn.FieldConnectTimeout: "connect-timeout",
}

// natsFieldRef names a natsconn.Config field by its flag, as every error does.
func natsFieldRef(f natsconn.Field) string { return flagRef(natsFieldFlags[f]) }

// config is the natsconn.Config of the flags, for the connection called
// callcontrol-<name>. Errors name the flags and mask the values of every
// secret flag of the command.
func (n *natsFlags) config(name string) natsconn.Config {
	c := n.cfg
	c.Name, c.Secrets, c.FieldName = "callcontrol-"+name, n.secretValues(), natsFieldRef
	return c
}

// secretValues returns the values of the command's secret flags.
func (n *natsFlags) secretValues() []string {
	if n.s == nil {
		return nil
	}
	return n.s.secretValues()
}

// connect dials NATS once and returns the connection and its JetStream
// context (see natsconn.Dial); nats.go then reconnects for ever. It
// first logs a WARN line for every risky setting in effect.
func (n *natsFlags) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	n.warn()
	nc, js, err := natsconn.Dial(n.config(name))
	return nc, js, natsRule(err)
}

// connectWait is connect for the long-running roles: the first connection
// is retried with backoff until --connect-timeout (see natsconn.Connect),
// each failed attempt a WARN line on n.log.
func (n *natsFlags) connectWait(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	n.warn()
	nc, js, err := natsconn.Connect(ctx, n.config(name), n.logger())
	return nc, js, natsRule(err)
}

// natsRule completes natsconn's rules with the flags and variables that
// satisfy them.
func natsRule(err error) error {
	switch {
	case errors.Is(err, natsconn.ErrNoPassword):
		return fmt.Errorf("%w (or %s)", err, envName("nats-password"))
	case errors.Is(err, natsconn.ErrAuthConflict):
		return fmt.Errorf("%w: user and password (in --nats-url or --nats-user), token, NKey seed or .creds file", err)
	}
	return err
}

// logger is n.log, or JSON lines on stderr.
func (n *natsFlags) logger() zerolog.Logger {
	if n.log != nil {
		return *n.log
	}
	return zerolog.New(stderr).With().Timestamp().Logger()
}

// flagRef names a flag with its environment variable, as every error does.
func flagRef(name string) string { return fmt.Sprintf("--%s (%s)", name, envName(name)) }

// warn logs one WARN line per risky setting in effect.
func (n *natsFlags) warn() {
	if n.s == nil {
		return
	}
	log := n.logger()
	for _, r := range riskySettings(n.s) {
		log.Warn().Str("setting", r.flag).Msg(r.msg)
	}
}

type risk struct{ flag, msg string }

// riskySettings lists the settings in effect on s that weaken security:
// turning off the gateway's certificate verification, and secrets on the
// command line (other users see them in the process list); and turning
// off the worker's call check (bench only).
func riskySettings(s *settings) []risk {
	var out []risk
	if f := s.fs.Lookup("skip-call-check"); f != nil && f.Value.String() == "true" {
		out = append(out, risk{"--skip-call-check",
			"--skip-call-check is set: commands are sent WITHOUT checking their call, a late or repeated release can hang up the customer's next call; for callcontrol bench only"})
	}
	if f := s.fs.Lookup("gateway-insecure-skip-verify"); f != nil && f.Value.String() == "true" {
		out = append(out, risk{"--gateway-insecure-skip-verify",
			"--gateway-insecure-skip-verify is set: the gateway's TLS certificate is NOT verified, anyone on the path can impersonate it; use --gateway-ca instead"})
	}
	s.fs.Visit(func(f *flag.Flag) { // only flags given on the command line
		if r, ok := commandLineRisk(s, f); ok {
			out = append(out, r)
		}
	})
	return out
}

// commandLineRisk is the risk of f given on the command line: a secret
// flag, or a URL holding a password or token.
func commandLineRisk(s *settings, f *flag.Flag) (risk, bool) {
	switch {
	case s.secrets[f.Name] && f.Value.String() != "":
		instead := envName(f.Name)
		if s.fs.Lookup(f.Name+"-file") != nil {
			instead += " or --" + f.Name + "-file"
		}
		return risk{"--" + f.Name, fmt.Sprintf("--%s on the command line is visible in the process list; use %s", f.Name, instead)}, true
	case f.Name == "nats-url" && strings.Contains(natsconn.RedactURLs(f.Value.String()), "***@"):
		return risk{"--nats-url", "--nats-url on the command line holds a password or token, visible in the process list; use CALLCONTROL_NATS_URL, or --nats-user with --nats-password-file"}, true
	}
	return risk{}, false
}
