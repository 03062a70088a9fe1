package natsconn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The rules [Config.Validate] enforces; a [*FieldError] wraps one.
var (
	ErrPasswordTwice = errors.New("give the password once")
	ErrTokenTwice    = errors.New("give the token once")
	ErrNoPassword    = errors.New("a NATS user needs a password")
	ErrNoUser        = errors.New("a NATS password needs a user")
	ErrCertKeyPair   = errors.New("a client certificate and its key go together; set both or neither")
	ErrAuthConflict  = errors.New("use one NATS authentication method")
	// ErrEmptyFile: a password or token file holds nothing.
	ErrEmptyFile = errors.New("is empty")
)

// FieldError is a setting of [Config] that is invalid, or two that
// conflict (Other is then the second one). Err is the rule broken (one of
// the Err sentinels) or the error reading the setting's file; it never
// quotes a secret or a file's content.
type FieldError struct {
	Field, Other Field
	Err          error
	name         func(Field) string
}

// Error names the field(s) as [Config.FieldName] does. A conflict reads
// "invalid configuration: A and B: rule"; a single field "A: error".
func (e *FieldError) Error() string {
	name := e.name
	if name == nil {
		name = func(f Field) string { return string(f) }
	}
	if e.Other != "" {
		return fmt.Sprintf("invalid configuration: %s and %s: %v", name(e.Field), name(e.Other), e.Err)
	}
	return fmt.Sprintf("%s: %v", name(e.Field), e.Err)
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldError returns a *FieldError naming fields as c does.
func (c Config) fieldError(f, other Field, err error) *FieldError {
	return &FieldError{Field: f, Other: other, Err: err, name: c.name}
}

// Validate rejects conflicting or incomplete settings with a [*FieldError]
// naming both fields and the rule. It reads no file ([Config.Options]
// does).
func (c Config) Validate() error {
	pair := func(a, b Field, rule error) error { return c.fieldError(a, b, rule) }
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return pair(FieldPassword, FieldPasswordFile, ErrPasswordTwice)
	case c.Token != "" && c.TokenFile != "":
		return pair(FieldToken, FieldTokenFile, ErrTokenTwice)
	case c.User != "" && c.Password == "" && c.PasswordFile == "":
		return pair(FieldUser, FieldPasswordFile, ErrNoPassword)
	case c.User == "" && (c.Password != "" || c.PasswordFile != ""):
		return pair(FieldPassword, FieldUser, ErrNoUser)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return pair(FieldCertFile, FieldKeyFile, ErrCertKeyPair)
	}
	if set := c.authMethods(); len(set) > 1 {
		return pair(set[0], set[1], ErrAuthConflict)
	}
	return nil
}

// authMethods returns the fields of each authentication method set, in
// a fixed order.
func (c Config) authMethods() []Field {
	var set []Field
	if urlHasUserInfo(c.URL) {
		set = append(set, FieldURL)
	}
	for _, m := range []struct {
		f  Field
		on bool
	}{
		{FieldUser, c.User != ""}, {FieldToken, c.Token != ""}, {FieldTokenFile, c.TokenFile != ""},
		{FieldNKeyFile, c.NKeyFile != ""}, {FieldCredsFile, c.CredsFile != ""},
	} {
		if m.on {
			set = append(set, m.f)
		}
	}
	return set
}

// Method describes the authentication method (and TLS) for error
// messages, naming the fields as [Config.FieldName] does, without any
// secret.
func (c Config) Method() string {
	return c.authMethod() + c.tlsMethod()
}

func (c Config) authMethod() string {
	switch {
	case c.User != "" && c.PasswordFile != "":
		return fmt.Sprintf("user %q, password from %s", c.User, c.name(FieldPasswordFile))
	case c.User != "":
		return fmt.Sprintf("user %q, password from %s", c.User, c.name(FieldPassword))
	case c.TokenFile != "":
		return "token from " + c.name(FieldTokenFile)
	case c.Token != "":
		return "token from " + c.name(FieldToken)
	case c.NKeyFile != "":
		return "NKey seed " + c.name(FieldNKeyFile)
	case c.CredsFile != "":
		return "credentials " + c.name(FieldCredsFile)
	case urlHasUserInfo(c.URL):
		return "user info in " + c.name(FieldURL)
	}
	return "no authentication"
}

func (c Config) tlsMethod() string {
	switch {
	case !c.tlsOn() && !strings.Contains(c.URL, "tls://"):
		return ""
	case c.CertFile != "":
		return ", mutual TLS with " + c.name(FieldCertFile)
	}
	return ", TLS"
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
