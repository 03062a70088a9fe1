package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/rs/zerolog"
)

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
		switch {
		case s.secrets[f.Name] && f.Value.String() != "":
			instead := envName(f.Name)
			if s.fs.Lookup(f.Name+"-file") != nil {
				instead += " or --" + f.Name + "-file"
			}
			out = append(out, risk{"--" + f.Name, fmt.Sprintf("--%s on the command line is visible in the process list; use %s", f.Name, instead)})
		case f.Name == "nats-url" && strings.Contains(redactURLs(f.Value.String()), "***@"):
			out = append(out, risk{"--nats-url", "--nats-url on the command line holds a password or token, visible in the process list; use CALLCONTROL_NATS_URL, or --nats-user with --nats-password-file"})
		}
	})
	return out
}
