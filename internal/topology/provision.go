package topology

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
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

// Ensure is [Provision] of the Shared part and parts, as a role does at
// start. Provision is idempotent, so an attempt JetStream did not answer
// (a cluster still electing its meta leader, or busy with the same
// streams created by other replicas starting at the same time) is
// abandoned after 10 s and made again, for up to 60 s in all; so is one
// the server reports as its own fault (an API error with code 5xx, e.g.
// "error creating store for stream", seen when replicas create streams at
// once in an account whose JetStream was just enabled). Any other error
// ends it at once.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config, parts Part) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		err := Provision(actx, js, cfg, Shared|parts)
		acancel()
		if err == nil || ctx.Err() != nil || !(unanswered(err) || serverFault(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond): // between attempts
		}
	}
}

// unanswered tells whether err means that JetStream did not answer.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// serverFault tells whether err is a JetStream API error the server
// reports as its own fault, not a refusal of the request.
func serverFault(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code >= 500
}
