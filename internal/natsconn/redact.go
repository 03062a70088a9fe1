package natsconn

import (
	"net/url"
	"os"
	"strings"
)

// Redact masks the secrets of c in msg with "***": [Config.Secrets], then
// the password and the token, whether given as values or read from their
// files. (URLs are masked by [RedactURLs].)
func (c Config) Redact(msg string) string {
	for _, v := range c.Secrets {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	for _, v := range []string{c.Password, c.Token, fileSecret(c.PasswordFile), fileSecret(c.TokenFile)} {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

// fileSecret returns the secret held in file, "" when there is none.
func fileSecret(file string) string {
	if file == "" {
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// RedactURLs returns the comma-separated URLs with every password or token
// replaced by "***" (and an unparsable one by "(unparsable URL)").
func RedactURLs(urls string) string {
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
