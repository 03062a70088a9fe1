package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Defaults applied by [New] to the zero-valued fields of a [Config].
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultPollTimeout    = 20 * time.Second
	DefaultMaxConns       = 64
	DefaultMaxBodyBytes   = 1 << 20
)

// Config of a [Client]. The zero value of every field except BaseURL means
// "use the default"; negative values are invalid.
type Config struct {
	// BaseURL is the gateway's scheme, host and port, e.g.
	// "https://10.1.1.1:8043" (in a cluster the NSLB address). Required;
	// scheme http or https; no user info, query or fragment. A path, if any,
	// is kept as a prefix: the client appends "/agentgateway/resource/...".
	BaseURL string

	// RequestTimeout bounds one request, from dialing to the last byte of
	// the body. It applies when the ctx passed to a method has no earlier
	// deadline. Default 5s.
	RequestTimeout time.Duration

	// PollTimeout replaces RequestTimeout for [Client.PollEvent]. It must
	// exceed the gateway's long-poll hold (about 10 s with the default
	// AGENT_POLL_WAIT_* settings), or every empty poll ends in a timeout.
	// Default 20s.
	PollTimeout time.Duration

	// MaxConns is MaxConnsPerHost and MaxIdleConnsPerHost of the pooled
	// transport: the most requests in flight at once, long polls included.
	// Size it to the caller's concurrency; requests beyond it wait for a
	// free connection (within their timeout). Default 64.
	MaxConns int

	// CAFile is an optional PEM bundle of CA certificates trusted in
	// addition to RootCAs (or to the system roots when RootCAs is nil). Use
	// it for the self-signed certificates common on premises.
	CAFile string

	// RootCAs, when set, replaces the system roots (tests, embedding
	// programs). It is not modified; CAFile certificates go to a copy.
	RootCAs *x509.CertPool

	// CertFile and KeyFile are an optional PEM client certificate and key
	// for mutual TLS. Set both or neither.
	CertFile, KeyFile string

	// InsecureSkipVerify turns off the verification of the gateway's
	// certificate. Default false: verification is on. Use CAFile instead.
	InsecureSkipVerify bool

	// MaxBodyBytes is the largest response body read. A larger body is an
	// error classified [ClassTransient] and is never read to the end.
	// Default 1 MiB.
	MaxBodyBytes int64
}

// Validate reports every invalid field of c, each as one error of the form
// "gateway: <Field>: <rule>", joined with [errors.Join]. Zero values are
// valid (they select defaults). Files are not read here; [New] reads them.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string) { errs = append(errs, fmt.Errorf("gateway: %s: %s", field, rule)) }
	if rule := checkBaseURL(c.BaseURL); rule != "" {
		bad("BaseURL", rule)
	}
	if c.RequestTimeout < 0 {
		bad("RequestTimeout", "must not be negative")
	}
	if c.PollTimeout < 0 {
		bad("PollTimeout", "must not be negative")
	}
	if c.MaxConns < 0 {
		bad("MaxConns", "must not be negative")
	}
	if c.MaxBodyBytes < 0 {
		bad("MaxBodyBytes", "must not be negative")
	}
	if c.CertFile != "" && c.KeyFile == "" {
		bad("KeyFile", "required when CertFile is set")
	}
	if c.KeyFile != "" && c.CertFile == "" {
		bad("CertFile", "required when KeyFile is set")
	}
	return errors.Join(errs...)
}

// checkBaseURL returns the rule that s breaks, or "".
func checkBaseURL(s string) string {
	if s == "" {
		return "required"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "must be an http or https URL"
	}
	if u.User != nil {
		return "must not contain user info"
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = DefaultPollTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

// tlsConfig builds the client TLS configuration: TLS 1.2 minimum, trust
// from RootCAs/CAFile, optional client certificate. File errors name the
// field.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.RootCAs, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pool, err := c.caPool()
		if err != nil {
			return nil, fmt.Errorf("gateway: CAFile: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: CertFile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// caPool returns a copy of RootCAs (or of the system roots) with the
// certificates of CAFile added.
func (c Config) caPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	var pool *x509.CertPool
	switch {
	case c.RootCAs != nil:
		pool = c.RootCAs.Clone()
	default:
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
