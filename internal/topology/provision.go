package topology

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Provision creates or updates, in this order, the streams, buckets and
// consumers of parts under cfg (zero fields take their defaults). It is
// idempotent: processes provisioning the same parts with the same cfg at
// the same time all succeed. It touches nothing outside parts, so a role
// that provisions Shared|Workers leaves the pollers' bucket as it is.
//
// A failure is a [*Error] naming what could not be created, wrapping
// JetStream's error (a *jetstream.APIError, context.DeadlineExceeded, ...).
// The first failure ends the call; what was created before stays.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config, parts Part) error {
	d := cfg.WithDefaults().declare(parts)
	for _, sc := range d.streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return &Error{Kind: KindStream, Name: sc.Name, Err: err}
		}
	}
	for _, kc := range d.buckets {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return &Error{Kind: KindBucket, Name: kc.Bucket, Err: err}
		}
	}
	for _, c := range d.consumers {
		if _, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return &Error{Kind: KindConsumer, Name: c.cfg.Durable, Err: err}
		}
	}
	return nil
}

// Kind is the kind of JetStream object an [Error] is about.
type Kind string

// The kinds of JetStream objects.
const (
	KindStream   Kind = "stream"
	KindBucket   Kind = "bucket"
	KindConsumer Kind = "consumer"
)

// Error is a failure of [Provision] to create or update one object.
type Error struct {
	Kind Kind   // stream, bucket or consumer
	Name string // its name: stream, bucket or durable name
	Err  error  // JetStream's error
}

func (e *Error) Error() string { return fmt.Sprintf("provision: %s %s: %v", e.Kind, e.Name, e.Err) }

// Unwrap returns JetStream's error, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }
