package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/kvwatch"
	"github.com/nats-io/nats.go/jetstream"
)

// sessions is the worker's read-through view of the session registry
// ([events.BucketSessions]): a watched in-memory map from agent ID to the
// GUID of its usable session (an invalid session counts as none),
// so the hot path never does a KV round trip and a rotated GUID is seen as
// soon as the registry has it.
type sessions struct {
	kv    jetstream.KeyValue
	mu    sync.RWMutex
	guids map[int]string
	// invalid holds why the gateway rejected an agent's registered session.
	invalid map[int]string
	ready   chan struct{} // closed once the initial values are loaded
}

func newSessions(kv jetstream.KeyValue) *sessions {
	return &sessions{kv: kv, guids: make(map[int]string), invalid: make(map[int]string), ready: make(chan struct{})}
}

// lookup returns the current GUID of agent.
func (s *sessions) lookup(agent int) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.guids[agent]
	return g, ok
}

// waitChange waits up to d for agent's GUID to differ from old and returns
// the new one, or "" when it did not change.
func (s *sessions) waitChange(ctx context.Context, agent int, old string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		if g, ok := s.lookup(agent); ok && g != old {
			return g
		}
		if time.Now().After(deadline) || sleep(ctx, 20*time.Millisecond) != nil {
			return ""
		}
	}
}

// run keeps the map in step with the bucket until ctx ends, re-establishing
// the watch if it fails.
func (s *sessions) run(ctx context.Context) {
	kvwatch.Follow(ctx, s.kv, "", kvwatch.View{Apply: s.apply, Ready: s.markReady})
}

func (s *sessions) apply(e jetstream.KeyValueEntry) {
	agent, err := strconv.Atoi(e.Key())
	if err != nil {
		return
	}
	var sess events.Session
	del := e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &sess) != nil || !sess.Usable()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.invalid, agent)
	if del {
		delete(s.guids, agent)
		if e.Operation() == jetstream.KeyValuePut && sess.State == events.SessionInvalid {
			s.invalid[agent] = sess.Reason
		}
	} else {
		s.guids[agent] = sess.GUID
	}
}

// rejected reports whether agent's registered session is marked invalid
// (the gateway refused its GUID), and why.
func (s *sessions) rejected(agent int) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	why, ok := s.invalid[agent]
	return why, ok
}

func (s *sessions) markReady() {
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

// sleep waits for d or until ctx ends, returning ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
