package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Backoff of the first connection of a long-running role.
const (
	connectFirstWait = 250 * time.Millisecond
	connectMaxWait   = 10 * time.Second
)

// connectWait is connect for the long-running roles: NATS may come up
// after them (a compose stack, a cluster restarting, a node rolled), so
// the first connection is retried with exponential backoff (250 ms
// doubling to 10 s, jittered by half) until it succeeds, ctx ends or
// --connect-timeout passes (0: for ever). Each failed attempt is logged as
// a WARN line on n.log. A refused credential or certificate is not
// retried: waiting does not fix it. Once connected, nats.go reconnects by
// itself for ever, as for connect.
func (n *natsFlags) connectWait(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	n.warn()
	opts, err := n.options()
	if err != nil {
		return nil, nil, err
	}
	log := zerolog.New(stderr).With().Timestamp().Logger()
	if n.log != nil {
		log = *n.log
	}
	var (
		nc      *nats.Conn
		lastErr error
	)
	op := func() error {
		var err error
		if nc, err = n.dial(name, opts); err != nil && refusedForGood(err) {
			return backoff.Permanent(err)
		}
		lastErr = err
		return err
	}
	attempt := 0
	notify := func(err error, d time.Duration) {
		attempt++
		log.Warn().Str("nats_url", redactURLs(n.url)).Str("auth", n.method()).Str("error", n.redact(err.Error())).
			Int("attempt", attempt).Dur("delay", d).Msg("nats not reachable, retrying")
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     connectFirstWait,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         connectMaxWait,
		MaxElapsedTime:      0, // --connect-timeout is wait's deadline: the last wait ends with it
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	wait, cancel := ctx, context.CancelFunc(func() {})
	if n.connectTimeout > 0 {
		wait, cancel = context.WithTimeout(ctx, n.connectTimeout)
	}
	defer cancel()
	if err := backoff.RetryNotify(op, backoff.WithContext(b, wait), notify); err != nil {
		var perm *backoff.PermanentError
		switch {
		case errors.As(err, &perm):
			return nil, nil, n.connectError(perm.Err, "")
		case lastErr == nil:
			lastErr = err
		}
		if ctx.Err() != nil {
			return nil, nil, n.connectError(lastErr, " (stopped while waiting)")
		}
		return nil, nil, n.connectError(lastErr, fmt.Sprintf(" (gave up after %s, %s)", n.connectTimeout, flagRef("connect-timeout")))
	}
	if attempt > 0 {
		log.Info().Str("nats_url", redactURLs(n.url)).Int("attempt", attempt+1).Msg("nats connected")
	}
	return n.jetStream(nc)
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
