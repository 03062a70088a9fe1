package main

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// natsFlags are the connection settings every role shares: the servers,
// one authentication method and TLS. [natsFlags.options] turns them into
// nats.Options in one place.
//
// Authentication, at most one of: user and password (--nats-user with
// --nats-password or --nats-password-file, or user info in --nats-url),
// a token (--nats-token or --nats-token-file), an NKey seed file
// (--nats-nkey), or a .creds file holding a user JWT and its seed
// (--nats-creds). TLS is on when the URL scheme is tls:// or any of
// --nats-ca, --nats-cert/--nats-key (mutual TLS) or --nats-tls-server-name
// is set; the server's certificate is always verified.
type natsFlags struct {
	url      string
	replicas int

	user, password, passwordFile string
	token, tokenFile             string
	nkey, creds                  string

	ca, cert, key, tlsServerName string

	// connectTimeout bounds the first connection of a long-running role
	// (see [natsFlags.connectWait]); 0 waits for ever.
	connectTimeout time.Duration

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
	fs := s.fs
	fs.StringVar(&n.url, "nats-url", defURL, "NATS server URL(s), comma separated (tls:// turns TLS on)")
	fs.StringVar(&n.user, "nats-user", "", "NATS user name (with --nats-password-file or CALLCONTROL_NATS_PASSWORD)")
	fs.StringVar(&n.password, "nats-password", "", "NATS password (a secret: prefer CALLCONTROL_NATS_PASSWORD or --nats-password-file)")
	fs.StringVar(&n.passwordFile, "nats-password-file", "", "file holding the NATS password")
	fs.StringVar(&n.token, "nats-token", "", "NATS authentication token (a secret: prefer CALLCONTROL_NATS_TOKEN or --nats-token-file)")
	fs.StringVar(&n.tokenFile, "nats-token-file", "", "file holding the NATS authentication token")
	fs.StringVar(&n.nkey, "nats-nkey", "", "NATS NKey user seed file")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials (.creds) file: user JWT and seed")
	fs.StringVar(&n.ca, "nats-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	fs.StringVar(&n.cert, "nats-cert", "", "client certificate (PEM) for mutual TLS with NATS (with --nats-key)")
	fs.StringVar(&n.key, "nats-key", "", "client key (PEM) for mutual TLS with NATS (with --nats-cert)")
	fs.StringVar(&n.tlsServerName, "nats-tls-server-name", "", "name expected in the NATS servers' certificates (default: the host of the URL)")
	s.secret(natsSecretFlags...)
}

// registerRole adds the flags only the long-running roles have, beside
// register's: --connect-timeout, as they wait for NATS at start (see
// [natsFlags.connectWait]), and --replicas, as they create the streams and
// buckets. The client commands create nothing, so they do not offer it.
func (n *natsFlags) registerRole(s *settings) {
	connection := s.group(groupConnection)
	s.fs.DurationVar(&n.connectTimeout, "connect-timeout", 0,
		"how long to retry the first NATS connection at start, with backoff (0 = for ever; a refused credential or certificate fails at once)")
	connection()
	s.fs.IntVar(&n.replicas, "replicas", 1, "replicas of streams and buckets created at start (3 on a cluster)")
	s.field("Replicas", "replicas")
}

// connect dials NATS and returns the connection and its JetStream context.
// It keeps reconnecting forever: a worker outlives a NATS node restart.
// It first logs a WARN line for every risky setting in effect. A
// connection error names the servers (without passwords) and the
// authentication method, never a secret.
func (n *natsFlags) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	n.warn()
	opts, err := n.options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := n.dial(name, opts)
	if err != nil {
		return nil, nil, n.connectError(err, "")
	}
	return n.jetStream(nc)
}

// dial makes one connection attempt.
func (n *natsFlags) dial(name string, opts []nats.Option) (*nats.Conn, error) {
	opts = append(opts, nats.Name("callcontrol-"+name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	return nats.Connect(n.url, opts...)
}

// connectError describes a failed connection: the servers (without
// passwords), the authentication method and a hint, never a secret.
func (n *natsFlags) connectError(err error, tail string) error {
	msg := fmt.Sprintf("connect to NATS %s (%s): %v%s%s", redactURLs(n.url), n.method(), err, n.tlsHint(err), tail)
	return fmt.Errorf("%s", n.redact(msg))
}

// jetStream returns nc with its JetStream context.
func (n *natsFlags) jetStream(nc *nats.Conn) (*nats.Conn, jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// options validates the settings and returns the authentication and TLS
// options. Files are read here, so a missing or malformed one is reported
// before any dialing, naming its flag.
func (n *natsFlags) options() ([]nats.Option, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	var (
		opts    []nats.Option
		scratch = nats.GetDefaultOptions()
	)
	// add validates opt on a scratch Options (RootCAs and ClientCert
	// load their files when applied) and keeps it.
	add := func(flag string, opt nats.Option) error {
		if err := opt(&scratch); err != nil {
			return fmt.Errorf("%s: %w", flagRef(flag), err)
		}
		opts = append(opts, opt)
		return nil
	}
	auth, err := n.authOption()
	if err != nil {
		return nil, err
	}
	if auth != nil {
		opts = append(opts, auth)
	}
	if n.ca != "" || n.cert != "" || n.tlsServerName != "" {
		// Secure first: RootCAs and ClientCert keep its tls.Config.
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: n.tlsServerName}
		if err := add("nats-tls-server-name", nats.Secure(tc)); err != nil {
			return nil, err
		}
	}
	if n.ca != "" {
		if err := add("nats-ca", nats.RootCAs(n.ca)); err != nil {
			return nil, err
		}
	}
	if n.cert != "" {
		if err := add("nats-cert", nats.ClientCert(n.cert, n.key)); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// tlsHint names the setting that fixes a common TLS failure, "" for others.
// A server that requires a client certificate either says so or, with
// TLS 1.3, may just close the connection after the handshake.
func (n *natsFlags) tlsHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "IP SANs") || strings.Contains(msg, "certificate is valid for"):
		return fmt.Sprintf(" (set %s to a name in the server's certificate)", flagRef("nats-tls-server-name"))
	case strings.Contains(msg, "unknown authority"):
		return fmt.Sprintf(" (set %s to the CA that signed the server's certificate)", flagRef("nats-ca"))
	case strings.Contains(msg, "certificate required"):
		return fmt.Sprintf(" (the server requires a client certificate: set %s and %s)", flagRef("nats-cert"), flagRef("nats-key"))
	case n.cert == "" && strings.Contains(msg, "tls") && strings.Contains(msg, "closed by remote"):
		return fmt.Sprintf(" (does the server require a client certificate? set %s and %s)", flagRef("nats-cert"), flagRef("nats-key"))
	}
	return ""
}

// flagRef names a flag with its environment variable, as every error does.
func flagRef(name string) string { return fmt.Sprintf("--%s (%s)", name, envName(name)) }
