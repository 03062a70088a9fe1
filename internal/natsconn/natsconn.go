// Package natsconn connects callcontrol's roles and client commands to
// NATS: one [Config] holds the servers, one authentication method and the
// TLS settings; [Config.Validate] checks it, [Config.Options] turns it into
// nats.Options (reading the files it names, so a bad one is reported before
// any dialing), [Dial] makes one connection attempt and [Connect] retries
// the first connection with exponential backoff, for the long-running
// roles that may start before NATS does.
//
// Errors name the setting at fault through [Config.FieldName] (cmd names
// its flags; the default is the Go field name) and never quote a secret:
// passwords and tokens, given as values, read from files or embedded in
// URLs, are masked by [Config.Redact] and [RedactURLs]. Validation errors
// are [*FieldError] values wrapping one of the Err sentinels; connection
// errors are [*ConnectError] values.
package natsconn

import "time"

// Config is how to reach NATS and authenticate.
//
// Authentication, at most one of: User with Password or PasswordFile (or
// user info in URL), Token or TokenFile, an NKey seed file (NKeyFile), or
// a .creds file holding a user JWT and its seed (CredsFile). TLS is on
// when the URL scheme is tls:// or any of CAFile, CertFile/KeyFile (mutual
// TLS) or TLSServerName is set; the server's certificate is always
// verified.
type Config struct {
	// URL is the server URL, or several, comma separated. tls:// turns TLS
	// on; user info in it is an authentication method.
	URL string

	// User and Password (or PasswordFile, whose trimmed content is the
	// password) authenticate by user name.
	User, Password, PasswordFile string
	// Token (or TokenFile, whose trimmed content is the token)
	// authenticates by token.
	Token, TokenFile string
	// NKeyFile is an NKey user seed file.
	NKeyFile string
	// CredsFile is a .creds file: a user JWT and its NKey seed.
	CredsFile string

	// CAFile is a PEM file of the CA that signed the servers' certificates.
	CAFile string
	// CertFile and KeyFile are the client certificate and key (PEM) for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// TLSServerName is the name expected in the servers' certificates;
	// "" means the host of the URL.
	TLSServerName string

	// Name is the connection's name, as the server shows it.
	Name string
	// ConnectTimeout bounds [Connect]'s retries of the first connection;
	// 0 retries until its ctx ends. [Dial] does not use it.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts once
	// connected (nats.go reconnects for ever); 0 means 250 ms.
	ReconnectWait time.Duration

	// Secrets are other secret values (of the process's other settings)
	// masked in errors and log lines, beside this Config's own.
	Secrets []string
	// FieldName names a field in errors and in [Config.Method]; nil names
	// it by its Go name (see [Field]).
	FieldName func(Field) string
}

// Field names a [Config] field in errors.
type Field string

// The fields of [Config] that errors name.
const (
	FieldURL            Field = "URL"
	FieldUser           Field = "User"
	FieldPassword       Field = "Password"
	FieldPasswordFile   Field = "PasswordFile"
	FieldToken          Field = "Token"
	FieldTokenFile      Field = "TokenFile"
	FieldNKeyFile       Field = "NKeyFile"
	FieldCredsFile      Field = "CredsFile"
	FieldCAFile         Field = "CAFile"
	FieldCertFile       Field = "CertFile"
	FieldKeyFile        Field = "KeyFile"
	FieldTLSServerName  Field = "TLSServerName"
	FieldConnectTimeout Field = "ConnectTimeout"
)

// DefaultReconnectWait is the pause between reconnection attempts when
// [Config.ReconnectWait] is 0.
const DefaultReconnectWait = 250 * time.Millisecond

// name returns how errors name f.
func (c Config) name(f Field) string {
	if c.FieldName == nil {
		return string(f)
	}
	return c.FieldName(f)
}

// tlsOn tells whether a TLS setting is given (besides a tls:// URL).
func (c Config) tlsOn() bool { return c.CAFile != "" || c.CertFile != "" || c.TLSServerName != "" }
