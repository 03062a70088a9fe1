package poller

// The confirmer test rig: a real JetStream, the pending bucket and a
// confirmer running against it, with helpers to build pending records and
// gateway events and to read the published confirmations.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// confirmRig is one confirmer test: a real nats-server with the streams
// and buckets provisioned, and a running confirmer.
type confirmRig struct {
	t  *testing.T
	js jetstream.JetStream
	kv jetstream.KeyValue
	c  *confirmer
}

// newConfirmRig starts NATS and a confirmer with the given grace and
// ownership; log may be zerolog.Nop().
func newConfirmRig(t *testing.T, grace time.Duration, log zerolog.Logger, owns func(int) bool) *confirmRig {
	t.Helper()
	_, js := testenv.Connect(t, testenv.JetStream(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testenv.Provision(t, js, topology.Config{DuplicateWindow: time.Minute})
	kv, err := js.KeyValue(ctx, events.BucketPending)
	if err != nil {
		t.Fatal(err)
	}
	r := &confirmRig{t: t, js: js, kv: kv, c: newConfirmer(Config{ReleaseGrace: grace}, js, log, owns)}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.c.run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("confirmer.run: %v", err)
		}
	})
	return r
}

// put stores a pending record as the worker does and waits until the
// confirmer has seen it (or already decided it).
func (r *confirmRig) put(p events.Pending) events.Pending {
	r.t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		r.t.Fatal(err)
	}
	key := events.PendingKey(p.AgentID, p.CommandID)
	if _, err := r.kv.Put(context.Background(), key, b); err != nil {
		r.t.Fatal(err)
	}
	testenv.WaitFor(r.t, 5*time.Second, "the confirmer to see "+key, func() bool {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		_, ok := r.c.pending[key]
		return ok || r.stored(p.CommandID)
	})
	return p
}

// stored reports whether the stream holds a confirmation of id.
func (r *confirmRig) stored(id string) bool {
	return len(r.confirmations()[id]) > 0
}

// waiting reports whether the confirmer holds key undecided.
func (r *confirmRig) waiting(key string) bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	pc, ok := r.c.pending[key]
	return ok && pc.out == nil
}

// settled reports whether nothing is decided but unsettled.
func (r *confirmRig) settled() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for _, pc := range r.c.pending {
		if pc.queued {
			return false
		}
	}
	return len(r.c.outbox) == 0
}

type storedConfirmation struct {
	events.Confirmation
	subject string
	header  nats.Header
}

// confirmations reads every confirmation stored so far, by command_id.
func (r *confirmRig) confirmations() map[string][]storedConfirmation {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		r.t.Fatal(err)
	}
	filter := events.SubjectConfirmations + ".>"
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		r.t.Fatal(err)
	}
	total := 0
	for _, n := range info.State.Subjects {
		total += int(n)
	}
	out := map[string][]storedConfirmation{}
	if total == 0 {
		return out
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		r.t.Fatal(err)
	}
	for n := 0; n < total; {
		batch, err := cons.Fetch(total-n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		for m := range batch.Messages() {
			var c storedConfirmation
			if err := json.Unmarshal(m.Data(), &c.Confirmation); err != nil {
				r.t.Fatal(err)
			}
			c.subject, c.header = m.Subject(), m.Headers()
			out[c.CommandID] = append(out[c.CommandID], c)
			n++
		}
		if batch.Error() != nil {
			r.t.Fatal(batch.Error())
		}
	}
	return out
}

// await waits for the confirmation of id and checks it is the only one.
func (r *confirmRig) await(id string) storedConfirmation {
	r.t.Helper()
	var got []storedConfirmation
	testenv.WaitFor(r.t, 10*time.Second, "the confirmation of "+id, func() bool {
		got = r.confirmations()[id]
		return len(got) > 0
	})
	if len(got) != 1 {
		r.t.Fatalf("%s: %d confirmations stored, want 1", id, len(got))
	}
	return got[0]
}

// gone waits until the pending record of p is deleted and forgotten.
func (r *confirmRig) gone(p events.Pending) {
	r.t.Helper()
	key := events.PendingKey(p.AgentID, p.CommandID)
	testenv.WaitFor(r.t, 10*time.Second, key+" to be deleted", func() bool {
		_, err := r.kv.Get(context.Background(), key)
		r.c.mu.Lock()
		_, held := r.c.pending[key]
		r.c.mu.Unlock()
		return errors.Is(err, jetstream.ErrKeyNotFound) && !held
	})
}

func cfPending(agent int, id, number string, deadline time.Time) events.Pending {
	issued := time.Now().Add(-2 * time.Second).UTC().Truncate(time.Millisecond)
	return events.Pending{
		CommandID: id, AgentID: agent, Number: number, CorrelationID: "corr-" + id,
		IssuedAt: issued, AcceptedAt: issued.Add(100 * time.Millisecond), Deadline: deadline,
	}
}

func cfEvent(agent int, typ, content string) events.AgentEvent {
	return events.AgentEvent{AgentID: agent, Type: typ, Content: json.RawMessage(content), ReceivedAt: time.Now()}
}

func cfCustomerRelease(agent int, callID, number string) events.AgentEvent {
	ev := cfEvent(agent, events.EventCustomerRelease, fmt.Sprintf(`{"callid":%q,"number":%q}`, callID, number))
	ev.CallID, ev.Number = callID, number
	return ev
}

func cfCallRelease(agent int, callID string) events.AgentEvent {
	ev := cfEvent(agent, events.EventCallRelease, fmt.Sprintf("%q", callID))
	ev.CallID = callID
	return ev
}

func cfTalking(agent int, callID, caller, called string) events.AgentEvent {
	return cfEvent(agent, "AgentEvent_Talking", fmt.Sprintf(`{"caller":%q,"called":%q,"callid":%q,"type":"main"}`, caller, called, callID))
}

func confirmationEqual(a, b events.Confirmation) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
