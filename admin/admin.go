// Package admin is the operator API of callcontrol: what an operator asks
// about and does to the commands, the dead letters, the agents and their
// sessions, over the same JetStream streams and buckets the workers and
// pollers use. The CLI (cmd/callcontrol), the HTTP API and the web console
// are its clients; they parse their input, call a [Client] method and
// render the typed result.
//
// It is also the Go client for services: [Client.Submit] publishes a
// command and follows its result and confirmation over NATS, as
// `callcontrol disconnect --wait` and the HTTP API's Prefer: wait do (see
// the example, and README "From Go").
//
// Every method takes a context first and does its I/O within it; none of
// them logs. Refusals and misses are typed errors: [ErrNoDeadLetter],
// [ErrNoCommand], [ErrSignedInElsewhere], [ErrNotSignedIn] (test with
// errors.Is) and [*ReplayRefusedError] (test with [IsRefused] or
// errors.As). Phone numbers in results are as stored; render them with a
// [Masker].
package admin

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoJetStream is returned by [New] without a JetStream context.
var ErrNoJetStream = errors.New("admin: no JetStream context")

// Client is the operator API over one JetStream context. It is safe for
// concurrent use; it holds no state besides its options.
type Client struct {
	js  jetstream.JetStream
	now func() time.Time
}

// Option configures a [Client].
type Option func(*Client)

// WithClock sets the clock the client reads "now" from (default
// time.Now): the replay deadline checks, the session timestamps and the
// ages of [Agent] use it.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// New returns a client over js. It fails only without js ([ErrNoJetStream]);
// it does no I/O: each method finds its streams and buckets when called.
func New(js jetstream.JetStream, opts ...Option) (*Client, error) {
	if js == nil {
		return nil, ErrNoJetStream
	}
	c := &Client{js: js, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}
