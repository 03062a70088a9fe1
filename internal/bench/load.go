package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callcontrol/callcontrol/admin"
	"maps"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// The load the scenarios of `callcontrol bench` share (one file
// per scenario; each builds its own benchEnv, so that no run inherits
// another's streams, buckets or connections): sign-ins, command publishing,
// taps on subjects and scratch consumers for the baselines.

// signIn signs agents in and registers their sessions, 32 at a time, and
// (when onCall) puts each on a call with Customer(agent). It returns
// the GUIDs, for the bare HTTP baseline only.
func (e *benchEnv) signIn(ctx context.Context, agents []int, onCall bool) (map[int]string, error) {
	reg, err := admin.New(e.js)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	guids := make(map[int]string, len(agents))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, a := range agents {
		g.Go(func() error {
			guid, err := e.gw.SignIn(gctx, a, gateway.SignInRequest{}, false)
			if err != nil {
				return fmt.Errorf("sign in agent %d: %w", a, err)
			}
			if err := reg.RegisterSession(gctx, a, guid, e.auth); err != nil {
				return err
			}
			mu.Lock()
			guids[a] = guid
			mu.Unlock()
			if onCall {
				return e.call(a)
			}
			return nil
		})
	}
	return guids, g.Wait()
}

// warmUp sends one command per agent (one per worker slot), so the worker
// has opened its gateway connections before anything is measured.
func (e *benchEnv) warmUp(ctx context.Context, results *tap, agents []int) error {
	base := results.count()
	if err := e.publish(ctx, fmt.Sprintf("warm%d", time.Now().UnixNano()), agents, nil, 0, nil); err != nil {
		return err
	}
	return benchWait(ctx, time.Minute, "warm-up results", func() bool { return results.count() >= base+len(agents) })
}

// pipeline publishes one disconnect per agent (with the agent's call_id
// from calls, if there; paced at one per every, 0 = as fast as publish
// acks allow) and returns the time from the first publish to the last
// result.
func (e *benchEnv) pipeline(ctx context.Context, prog *progress, label string, results *tap, agents []int, calls map[int]string,
	every time.Duration, sent func(int, time.Time)) (time.Duration, error) {
	base, start := results.count(), time.Now()
	errc := make(chan error, 1)
	go func() { errc <- e.publish(ctx, "run", agents, calls, every, sent) }()
	err := waitProgress(ctx, prog, label, 5*time.Minute, len(agents), func() int { return results.count() - base })
	elapsed := time.Since(start)
	return elapsed, errors.Join(err, <-errc)
}

func CommandID(tag string, agent int) string { return tag + "-" + strconv.Itoa(agent) }

// publish sends one disconnect per agent (with the agent's call_id from
// calls, if there) and waits for the publish acks.
func (e *benchEnv) publish(ctx context.Context, tag string, agents []int, calls map[int]string, every time.Duration, sent func(int, time.Time)) error {
	return e.publishCalls(ctx, events.SubjectDisconnect, tag, agents, calls, every, sent)
}

// publishTo is publish of plain commands to subject.
func (e *benchEnv) publishTo(ctx context.Context, subject, tag string, agents []int, every time.Duration, sent func(int, time.Time)) error {
	return e.publishCalls(ctx, subject, tag, agents, nil, every, sent)
}

// publishCalls is publish to subject.
func (e *benchEnv) publishCalls(ctx context.Context, subject, tag string, agents []int, calls map[int]string, every time.Duration,
	sent func(int, time.Time)) error {
	start := time.Now()
	for i, a := range agents {
		if every > 0 {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d) // pacing the offered load
			}
		}
		cmd := events.DisconnectCommand{CommandID: CommandID(tag, a), AgentID: a, Number: Customer(a), CallID: calls[a], TTL: time.Minute}
		data, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(events.HeaderMsgID, cmd.CommandID)
		if sent != nil {
			sent(i, time.Now())
		}
		if _, err := e.ajs.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	select {
	case <-e.ajs.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("publish acks did not arrive")
	}
}

// allPolled waits until the simulator has seen a poll for every agent.
func (e *benchEnv) allPolled(ctx context.Context, prog *progress, label string, agents []int) error {
	return waitProgress(ctx, prog, label, 3*time.Minute, len(agents), func() int {
		n := 0
		for _, a := range agents {
			if e.sim.Sim.Polls(a) > 0 {
				n++
			}
		}
		return n
	})
}

// waitProgress waits until count() reaches total, showing progress.
func waitProgress(ctx context.Context, prog *progress, label string, d time.Duration, total int, count func() int) error {
	return benchWait(ctx, d, label, func() bool {
		c := count()
		prog.set(label, c, total)
		return c >= total
	})
}

// tap counts the messages on a subject with a plain NATS subscription and
// remembers when each command_id was seen, by status (the last token).
type tap struct {
	sub      *nats.Subscription
	mu       sync.Mutex
	n        int
	when     map[string]time.Time
	statuses map[string]int
}

func (e *benchEnv) tap(subject string) (*tap, error) {
	t := &tap{when: map[string]time.Time{}, statuses: map[string]int{}}
	sub, err := e.nc.Subscribe(subject, func(m *nats.Msg) {
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		t.n++
		if id := m.Header.Get(events.HeaderCommandID); id != "" {
			if _, ok := t.when[id]; !ok {
				t.when[id] = now
			}
		}
		t.statuses[m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]]++
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	t.sub = sub
	return t, e.nc.Flush()
}

func (t *tap) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *tap) status(s string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statuses[s]
}

func (t *tap) seen() map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.when)
}

func (t *tap) stop() { _ = t.sub.Unsubscribe() }

func scratchConsumer(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Consumer, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench." + name}})
	if err != nil {
		return nil, err
	}
	return s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
}

// selfCPU is the CPU time this process has used (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
