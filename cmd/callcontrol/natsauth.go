package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

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
