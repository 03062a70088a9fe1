package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Defaults of [Config], applied to its zero fields.
const (
	// DefaultRate is each token's sustained rate of requests per second.
	DefaultRate = 50
	// DefaultBurst is how many requests a token may send at once.
	DefaultBurst = 100
	// DefaultMaxWait is the longest Prefer: wait honoured; a longer one is
	// cut to it (and Preference-Applied says so).
	DefaultMaxWait = time.Minute
	// DefaultEventBuffer is the events GET /v1/events holds for one
	// client at most: a client that falls further behind is dropped.
	DefaultEventBuffer = 1024
	// DefaultEventWriteTimeout: a client that takes longer to take one
	// write of GET /v1/events is dropped.
	DefaultEventWriteTimeout = 10 * time.Second
	// DefaultStatusWindow is how far back GET /v1/commands/{id} searches
	// the results of a command without a ledger record.
	DefaultStatusWindow = 24 * time.Hour
)

// Config is what a [Server] runs with. JetStream and Tokens are required.
type Config struct {
	// JetStream reaches the streams and buckets (provisioned with the
	// topology's Shared and API parts).
	JetStream jetstream.JetStream
	// Tokens are the bearer tokens accepted ([LoadTokens]).
	Tokens *Tokens
	// Logger receives one line per request; the zero value logs nothing.
	Logger zerolog.Logger
	// Rate and Burst are each token's limit (golang.org/x/time/rate):
	// default [DefaultRate] per second and [DefaultBurst].
	Rate  rate.Limit
	Burst int
	// MaxWait caps Prefer: wait. Default [DefaultMaxWait].
	MaxWait time.Duration
	// StatusWindow: default [DefaultStatusWindow].
	StatusWindow time.Duration
	// EventBuffer and EventWriteTimeout bound each client of
	// GET /v1/events: default [DefaultEventBuffer] events and
	// [DefaultEventWriteTimeout].
	EventBuffer       int
	EventWriteTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Errors of [Config.Validate].
var (
	ErrNoJetStream = errors.New("api: Config.JetStream is required")
	ErrNoTokens    = errors.New("api: Config.Tokens is required")
)

func (c Config) withDefaults() Config {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.StatusWindow == 0 {
		c.StatusWindow = DefaultStatusWindow
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.EventWriteTimeout == 0 {
		c.EventWriteTimeout = DefaultEventWriteTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first bad field of c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.JetStream == nil:
		return ErrNoJetStream
	case c.Tokens == nil:
		return ErrNoTokens
	case c.Rate < 0 || c.Burst < 1:
		return fmt.Errorf("api: Config.Rate and Burst must be positive, got %v and %d", c.Rate, c.Burst)
	case c.EventBuffer < 1 || c.EventWriteTimeout < 0:
		return fmt.Errorf("api: Config.EventBuffer must be positive and EventWriteTimeout not negative")
	case c.MaxWait < 0 || c.StatusWindow < 0:
		return fmt.Errorf("api: Config.MaxWait and StatusWindow must not be negative")
	}
	return nil
}
