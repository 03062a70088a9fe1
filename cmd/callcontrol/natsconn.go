package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
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

	// log receives the WARN lines about risky settings (see
	// [riskySettings]); nil means JSON lines on stderr.
	log *zerolog.Logger
	s   *settings // the flag set the flags were registered on; nil in dev
}

// natsSecretFlags hold secrets: their values are never shown.
var natsSecretFlags = []string{"nats-password", "nats-token"}

func (n *natsFlags) register(s *settings, defURL string) {
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
	fs.IntVar(&n.replicas, "replicas", 1, "replicas of streams and buckets created at start (3 on a cluster)")
	s.field("Replicas", "replicas")
	s.secret(natsSecretFlags...)
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
	opts = append(opts, nats.Name("callcontrol-"+name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		msg := fmt.Sprintf("connect to NATS %s (%s): %v%s", redactURLs(n.url), n.method(), err, tlsHint(err))
		return nil, nil, fmt.Errorf("%s", n.redact(msg))
	}
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

// authOption returns the option of the one authentication method set, nil
// for none (or user info in the URL, which nats.go reads itself).
func (n *natsFlags) authOption() (nats.Option, error) {
	switch {
	case n.user != "":
		pw, err := secretValue(n.password, "nats-password-file", n.passwordFile)
		if err != nil {
			return nil, err
		}
		return nats.UserInfo(n.user, pw), nil
	case n.token != "" || n.tokenFile != "":
		tok, err := secretValue(n.token, "nats-token-file", n.tokenFile)
		if err != nil {
			return nil, err
		}
		return nats.Token(tok), nil
	case n.nkey != "":
		opt, err := nats.NkeyOptionFromSeed(n.nkey)
		if err != nil {
			return nil, fmt.Errorf("%s: not a readable NKey user seed file: %w", flagRef("nats-nkey"), noContent(err))
		}
		return opt, nil
	case n.creds != "":
		if err := checkCreds(n.creds); err != nil {
			return nil, fmt.Errorf("%s: %w", flagRef("nats-creds"), err)
		}
		return nats.UserCredentials(n.creds), nil
	}
	return nil, nil
}

// check rejects conflicting or incomplete settings with an error naming
// both flags and the rule.
func (n *natsFlags) check() error {
	both := func(a, b, rule string) error {
		return fmt.Errorf("invalid configuration: %s and %s: %s", flagRef(a), flagRef(b), rule)
	}
	switch {
	case n.password != "" && n.passwordFile != "":
		return both("nats-password", "nats-password-file", "give the password once")
	case n.token != "" && n.tokenFile != "":
		return both("nats-token", "nats-token-file", "give the token once")
	case n.user != "" && n.password == "" && n.passwordFile == "":
		return both("nats-user", "nats-password-file", "a NATS user needs a password (or CALLCONTROL_NATS_PASSWORD)")
	case n.user == "" && (n.password != "" || n.passwordFile != ""):
		return both("nats-password", "nats-user", "a NATS password needs a user")
	case (n.cert == "") != (n.key == ""):
		return both("nats-cert", "nats-key", "a client certificate and its key go together; set both or neither")
	}
	// At most one authentication method.
	var set []string
	if urlHasUserInfo(n.url) {
		set = append(set, "nats-url")
	}
	for _, m := range []struct {
		flag string
		on   bool
	}{
		{"nats-user", n.user != ""}, {"nats-token", n.token != ""}, {"nats-token-file", n.tokenFile != ""},
		{"nats-nkey", n.nkey != ""}, {"nats-creds", n.creds != ""},
	} {
		if m.on {
			set = append(set, m.flag)
		}
	}
	if len(set) > 1 {
		return both(set[0], set[1], "use one NATS authentication method: user and password (in --nats-url or --nats-user), token, NKey seed or .creds file")
	}
	return nil
}

// method describes the authentication method for error messages, without
// any secret.
func (n *natsFlags) method() string {
	tlsOn := ""
	if n.ca != "" || n.cert != "" || n.tlsServerName != "" || strings.Contains(n.url, "tls://") {
		tlsOn = ", TLS"
		if n.cert != "" {
			tlsOn = ", mutual TLS with " + flagRef("nats-cert")
		}
	}
	switch {
	case n.user != "" && n.passwordFile != "":
		return fmt.Sprintf("user %q, password from %s%s", n.user, flagRef("nats-password-file"), tlsOn)
	case n.user != "":
		return fmt.Sprintf("user %q, password from %s%s", n.user, flagRef("nats-password"), tlsOn)
	case n.tokenFile != "":
		return "token from " + flagRef("nats-token-file") + tlsOn
	case n.token != "":
		return "token from " + flagRef("nats-token") + tlsOn
	case n.nkey != "":
		return "NKey seed " + flagRef("nats-nkey") + tlsOn
	case n.creds != "":
		return "credentials " + flagRef("nats-creds") + tlsOn
	case urlHasUserInfo(n.url):
		return "user info in " + flagRef("nats-url") + tlsOn
	}
	return "no authentication" + tlsOn
}

// tlsHint names the setting that fixes a common TLS failure, "" for others.
func tlsHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate required"):
		return fmt.Sprintf(" (the server requires a client certificate: set %s and %s)", flagRef("nats-cert"), flagRef("nats-key"))
	case strings.Contains(msg, "IP SANs") || strings.Contains(msg, "certificate is valid for"):
		return fmt.Sprintf(" (set %s to a name in the server's certificate)", flagRef("nats-tls-server-name"))
	case strings.Contains(msg, "unknown authority"):
		return fmt.Sprintf(" (set %s to the CA that signed the server's certificate)", flagRef("nats-ca"))
	}
	return ""
}

// redact masks the secrets of n (passwords and tokens, whether given as
// values, read from files or embedded in URLs) in msg.
func (n *natsFlags) redact(msg string) string {
	if n.s != nil {
		msg = n.s.redact(msg)
	}
	for _, v := range []string{n.password, n.token, n.fileSecret(n.passwordFile), n.fileSecret(n.tokenFile)} {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

// fileSecret returns the secret held in file, "" when there is none.
func (n *natsFlags) fileSecret(file string) string {
	if file == "" {
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// secretValue returns value, or the trimmed content of file (the flag
// fileFlag) when value is empty. The content is never part of an error.
func secretValue(value, fileFlag, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagRef(fileFlag), err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", flagRef(fileFlag), file)
	}
	return v, nil
}

// checkCreds makes sure file is a .creds file with a user JWT and a user
// seed, so that a wrong file is reported at start rather than as an
// authorization violation. Its content never appears in the error.
func checkCreds(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	defer clear(b)
	tok, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return errors.New("no user JWT found")
	}
	if _, err := jwt.DecodeUserClaims(tok); err != nil {
		return errors.New("no valid user JWT found")
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("no user NKey seed found: %w", noContent(err))
	}
	kp.Wipe()
	return nil
}

// noContent returns err unless it might quote file content: file system
// errors name the path, nkeys' and nats.go's seed errors are fixed
// sentences; anything else is replaced.
func noContent(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	if msg := err.Error(); strings.HasPrefix(msg, "nkeys: ") || strings.HasPrefix(msg, "nats: Not a valid") {
		return err
	}
	return errors.New("malformed")
}

// urlHasUserInfo tells whether any of the comma-separated URLs carries a
// user, password or token.
func urlHasUserInfo(urls string) bool {
	for _, s := range strings.Split(urls, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// redactURLs returns the comma-separated URLs with every password or token
// replaced by "***".
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "***")
			} else {
				u.User = url.User("***") // a token
			}
		}
		parts[i] = strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
	}
	return strings.Join(parts, ",")
}

// flagRef names a flag with its environment variable, as every error does.
func flagRef(name string) string { return fmt.Sprintf("--%s (%s)", name, envName(name)) }

// warn logs one WARN line per risky setting in effect.
func (n *natsFlags) warn() {
	if n.s == nil {
		return
	}
	log := zerolog.New(stderr).With().Timestamp().Logger()
	if n.log != nil {
		log = *n.log
	}
	for _, r := range riskySettings(n.s) {
		log.Warn().Str("setting", r.flag).Msg(r.msg)
	}
}

type risk struct{ flag, msg string }

// riskySettings lists the settings in effect on s that weaken security:
// turning off the gateway's certificate verification, and secrets on the
// command line (other users see them in the process list).
func riskySettings(s *settings) []risk {
	var out []risk
	if f := s.fs.Lookup("gateway-insecure-skip-verify"); f != nil && f.Value.String() == "true" {
		out = append(out, risk{"--gateway-insecure-skip-verify",
			"--gateway-insecure-skip-verify is set: the gateway's TLS certificate is NOT verified, anyone on the path can impersonate it; use --gateway-ca instead"})
	}
	s.fs.Visit(func(f *flag.Flag) { // only flags given on the command line
		switch {
		case s.secrets[f.Name] && f.Value.String() != "":
			out = append(out, risk{"--" + f.Name, fmt.Sprintf("--%s on the command line is visible in the process list; use %s or a file", f.Name, envName(f.Name))})
		case f.Name == "nats-url" && strings.Contains(redactURLs(f.Value.String()), ":***@"):
			out = append(out, risk{"--nats-url", "--nats-url on the command line holds a password, visible in the process list; use CALLCONTROL_NATS_URL or --nats-user with --nats-password-file"})
		}
	})
	return out
}
