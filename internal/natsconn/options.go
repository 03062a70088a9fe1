package natsconn

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Options validates c (see [Config.Validate]) and returns its nats.Options:
// authentication, TLS, the connection name, and reconnecting for ever
// every [Config.ReconnectWait]. Files are read here, so a missing or
// malformed one is reported before any dialing, as a [*FieldError] naming
// its field and never quoting its content.
func (c Config) Options() ([]nats.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	auth, err := c.authOption()
	if err != nil {
		return nil, err
	}
	var opts []nats.Option
	if auth != nil {
		opts = append(opts, auth)
	}
	tlsOpts, err := c.tlsOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, tlsOpts...)
	return append(opts, nats.Name(c.Name), nats.MaxReconnects(-1),
		nats.ReconnectWait(cmp.Or(c.ReconnectWait, DefaultReconnectWait))), nil
}

// tlsOptions returns the TLS options, each applied once to a scratch
// nats.Options first: RootCAs and ClientCert load their files then.
func (c Config) tlsOptions() ([]nats.Option, error) {
	var (
		opts    []nats.Option
		scratch = nats.GetDefaultOptions()
	)
	add := func(f Field, opt nats.Option) error {
		if err := opt(&scratch); err != nil {
			return c.fieldError(f, "", err)
		}
		opts = append(opts, opt)
		return nil
	}
	if c.tlsOn() {
		// Secure first: RootCAs and ClientCert keep its tls.Config.
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
		if err := add(FieldTLSServerName, nats.Secure(tc)); err != nil {
			return nil, err
		}
	}
	if c.CAFile != "" {
		if err := add(FieldCAFile, nats.RootCAs(c.CAFile)); err != nil {
			return nil, err
		}
	}
	if c.CertFile != "" {
		if err := add(FieldCertFile, nats.ClientCert(c.CertFile, c.KeyFile)); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// authOption returns the option of the one authentication method set, nil
// for none (or user info in the URL, which nats.go reads itself).
func (c Config) authOption() (nats.Option, error) {
	switch {
	case c.User != "":
		pw, err := c.secretValue(c.Password, FieldPasswordFile, c.PasswordFile)
		if err != nil {
			return nil, err
		}
		return nats.UserInfo(c.User, pw), nil
	case c.Token != "" || c.TokenFile != "":
		tok, err := c.secretValue(c.Token, FieldTokenFile, c.TokenFile)
		if err != nil {
			return nil, err
		}
		return nats.Token(tok), nil
	case c.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, c.fieldError(FieldNKeyFile, "", fmt.Errorf("not a readable NKey user seed file: %w", noContent(err)))
		}
		return opt, nil
	case c.CredsFile != "":
		if err := checkCreds(c.CredsFile); err != nil {
			return nil, c.fieldError(FieldCredsFile, "", err)
		}
		return nats.UserCredentials(c.CredsFile), nil
	}
	return nil, nil
}

// secretValue returns value, or the trimmed content of file (the field
// fileField) when value is empty. The content is never part of an error.
func (c Config) secretValue(value string, fileField Field, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", c.fieldError(fileField, "", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", c.fieldError(fileField, "", fmt.Errorf("%s %w", file, ErrEmptyFile))
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
