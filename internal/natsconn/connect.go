package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Backoff of [Connect]'s first connection.
const (
	connectFirstWait = 250 * time.Millisecond
	connectMaxWait   = 10 * time.Second
)

// ConnectError is a failed connection. Its message names the servers
// (passwords masked), the authentication method and, for a common TLS
// failure, the setting that fixes it; it never holds a secret of the
// [Config].
type ConnectError struct {
	// URL is [Config.URL] with its passwords and tokens masked.
	URL string
	// Method is [Config.Method].
	Method string
	// Err is the last attempt's error (nats.go's, or the context's when no
	// attempt ended).
	Err error
	// Stopped: [Connect]'s ctx ended while waiting for NATS.
	Stopped bool
	// GaveUp is [Config.ConnectTimeout] when [Connect] gave up after it;
	// 0 otherwise.
	GaveUp time.Duration

	msg string
}

// Error returns the redacted description.
func (e *ConnectError) Error() string { return e.msg }

// Unwrap returns Err.
func (e *ConnectError) Unwrap() error { return e.Err }

// connectError describes a failed connection; tail ends the message.
func (c Config) connectError(err error, tail string) *ConnectError {
	e := &ConnectError{URL: RedactURLs(c.URL), Method: c.Method(), Err: err}
	e.msg = c.Redact(fmt.Sprintf("connect to NATS %s (%s): %v%s%s", e.URL, e.Method, err, c.tlsHint(err), tail))
	return e
}

// tlsHint names the setting that fixes a common TLS failure, "" for others.
// A server that requires a client certificate either says so or, with
// TLS 1.3, may just close the connection after the handshake.
func (c Config) tlsHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "IP SANs") || strings.Contains(msg, "certificate is valid for"):
		return fmt.Sprintf(" (set %s to a name in the server's certificate)", c.name(FieldTLSServerName))
	case strings.Contains(msg, "unknown authority"):
		return fmt.Sprintf(" (set %s to the CA that signed the server's certificate)", c.name(FieldCAFile))
	case strings.Contains(msg, "certificate required"):
		return fmt.Sprintf(" (the server requires a client certificate: set %s and %s)", c.name(FieldCertFile), c.name(FieldKeyFile))
	case c.CertFile == "" && strings.Contains(msg, "tls") && strings.Contains(msg, "closed by remote"):
		return fmt.Sprintf(" (does the server require a client certificate? set %s and %s)", c.name(FieldCertFile), c.name(FieldKeyFile))
	}
	return ""
}

// Drain flushes and closes nc (see nats.Conn.Drain: subscriptions stop
// taking messages, the ones received are handled, what was published is
// sent), waiting at most d before it closes nc anyway. nc is closed when
// Drain returns, or (when d ran out) is about to be.
func Drain(nc *nats.Conn, d time.Duration) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(d):
		nc.Close()
	}
}

// Dial makes one connection attempt with cfg's options and returns the
// connection and its JetStream context. Once connected, nats.go
// reconnects by itself for ever. A setting error is a [*FieldError], a
// failed attempt a [*ConnectError]. nats.go's connect takes no context:
// an attempt is bounded by its dial timeout (2 s per server).
func Dial(cfg Config) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, nil, cfg.connectError(err, "")
	}
	return withJetStream(nc)
}

// Connect is [Dial] for the long-running roles: NATS may come up after
// them (a compose stack, a cluster restarting, a node rolled), so the
// first connection is retried with exponential backoff (250 ms doubling
// to 10 s, jittered by half) until it succeeds, ctx ends or
// [Config.ConnectTimeout] passes (0: until ctx ends). Each failed attempt
// is a WARN line on log ("nats not reachable, retrying", with nats_url,
// auth, error, attempt and delay; no secret), and a connection after
// retries an INFO line. A refused credential or certificate is not
// retried: waiting does not fix it.
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, nil, err
	}
	r := &retry{cfg: cfg, opts: opts, log: log}
	wait, cancel := ctx, context.CancelFunc(func() {})
	if cfg.ConnectTimeout > 0 {
		wait, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
	}
	defer cancel()
	if err := backoff.RetryNotify(r.attempt, backoff.WithContext(newBackOff(), wait), r.notify); err != nil {
		return nil, nil, r.failure(ctx, err)
	}
	if r.attempts > 0 {
		log.Info().Str("nats_url", RedactURLs(cfg.URL)).Int("attempt", r.attempts+1).Msg("nats connected")
	}
	return withJetStream(r.nc)
}

// newBackOff is the backoff of the first connection, every field set.
func newBackOff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     connectFirstWait,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         connectMaxWait,
		MaxElapsedTime:      0, // ConnectTimeout is the retry's deadline: the last wait ends with it
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}

// retry is the state of one [Connect].
type retry struct {
	cfg      Config
	opts     []nats.Option
	log      zerolog.Logger
	nc       *nats.Conn
	lastErr  error
	attempts int // failed attempts notified
}

// attempt makes one connection attempt.
func (r *retry) attempt() error {
	var err error
	if r.nc, err = nats.Connect(r.cfg.URL, r.opts...); err != nil && refusedForGood(err) {
		return backoff.Permanent(err)
	}
	r.lastErr = err
	return err
}

// notify logs a failed attempt.
func (r *retry) notify(err error, d time.Duration) {
	r.attempts++
	r.log.Warn().Str("nats_url", RedactURLs(r.cfg.URL)).Str("auth", r.cfg.Method()).Str("error", r.cfg.Redact(err.Error())).
		Int("attempt", r.attempts).Dur("delay", d).Msg("nats not reachable, retrying")
}

// failure is the *ConnectError of a retry that ended with err.
func (r *retry) failure(ctx context.Context, err error) *ConnectError {
	var perm *backoff.PermanentError
	switch {
	case errors.As(err, &perm):
		return r.cfg.connectError(perm.Err, "")
	case r.lastErr == nil:
		r.lastErr = err
	}
	if ctx.Err() != nil {
		e := r.cfg.connectError(r.lastErr, " (stopped while waiting)")
		e.Stopped = true
		return e
	}
	e := r.cfg.connectError(r.lastErr, fmt.Sprintf(" (gave up after %s, %s)", r.cfg.ConnectTimeout, r.cfg.name(FieldConnectTimeout)))
	e.GaveUp = r.cfg.ConnectTimeout
	return e
}

// withJetStream returns nc with its JetStream context.
func withJetStream(nc *nats.Conn) (*nats.Conn, jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// refusedForGood tells whether a connection error is one that a retry
// does not fix: the server refused the credential, or the TLS handshake
// failed on a certificate.
func refusedForGood(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		errors.Is(err, nats.ErrAccountAuthExpired) || errors.Is(err, nats.ErrNkeysNotSupported) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
