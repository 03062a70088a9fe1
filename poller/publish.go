package poller

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
)

// publish stores m in JetStream (synchronously: the ack says it is
// stored), retrying with backoff until it is stored, ctx ends or the NATS
// connection is closed for good. m carries its Nats-Msg-Id, so a retry of
// a publish whose ack was lost is stored once.
func (p *Poller) publish(ctx context.Context, m *nats.Msg) error {
	attempt := 0
	op := func() error {
		_, err := p.js.PublishMsg(ctx, m)
		if err != nil && p.js.Conn().IsClosed() {
			return backoff.Permanent(err)
		}
		return err
	}
	notify := func(err error, d time.Duration) {
		attempt++
		p.log.Warn().Err(err).Str("subject", m.Subject).Int(keyAttempt, attempt).Dur(keyDelay, d).Msg("publish failed")
	}
	return backoff.RetryNotify(op, backoff.WithContext(p.newBackoff(), ctx), notify)
}
