package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/nats-io/nats.go/jetstream"
)

// Invalid commands end rejected with a reason naming the field, and no
// request reaches the gateway.
func TestInvalidCommandsRejected(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{501}, customer)
	b.startWorker(nil)
	cases := []struct{ id, payload, field string }{
		{"bad-agent-low", `{"command_id":"bad-agent-low","agent_id":100,"number":"123"}`, "agent_id"},
		{"bad-agent-high", `{"command_id":"bad-agent-high","agent_id":60000,"number":"123"}`, "agent_id"},
		{"bad-agent-type", `{"command_id":"bad-agent-type","agent_id":"501","number":"123"}`, "agent_id"},
		{"bad-number-path", `{"command_id":"bad-number-path","agent_id":501,"number":"12/../34"}`, "number"},
		{"bad-number-long", `{"command_id":"bad-number-long","agent_id":501,"number":"1234567890123456789012345"}`, "number"},
		{"bad-number-empty", `{"command_id":"bad-number-empty","agent_id":501,"number":""}`, "number"},
		{"bad-ttl", `{"command_id":"bad-ttl","agent_id":501,"number":"123","ttl_ms":-5}`, "ttl_ms"},
		{"bad-time", `{"command_id":"bad-time","agent_id":501,"number":"123","expires_at":"tomorrow"}`, "expires_at"},
		{"bad-corr", `{"command_id":"bad-corr","agent_id":501,"number":"123","correlation_id":"a\r\nb"}`, "correlation_id"},
		{"bad-json", `{"command_id":"bad-json","agent_id":501,`, "payload"},
		{"bad-big", `{"command_id":"bad-big","agent_id":501,"number":"123","requested_by":"` + strings.Repeat("x", events.MaxCommandSize) + `"}`, "payload"},
		{"no-id", `{"agent_id":501,"number":"123"}`, "command_id"},
		{"dup-number", `{"command_id":"dup-number","agent_id":501,"number":"123","number":"456"}`, "number"},
	}
	for _, c := range cases {
		b.publishRaw([]byte(c.payload), c.id)
	}
	res := b.waitResults(len(cases), 10*time.Second)
	for _, c := range cases {
		r := res[c.id]
		if len(r) != 1 {
			t.Errorf("%s: %d results, want 1", c.id, len(r))
			continue
		}
		if r[0].Status != events.StatusRejected || !strings.HasPrefix(r[0].Reason, c.field+":") {
			t.Errorf("%s: %s %q, want rejected naming %s", c.id, r[0].Status, r[0].Reason, c.field)
		}
	}
	if n := len(b.sim.Disconnects()); n != 0 {
		t.Fatalf("%d requests reached the gateway", n)
	}
	// Each rejected command is copied, unchanged, to the dead-letter stream
	// with its reason.
	dlq := b.deadLetters()
	for _, c := range cases {
		m, ok := dlq[c.id]
		if !ok {
			t.Errorf("%s: no dead letter", c.id)
			continue
		}
		if string(m.Data) != c.payload || !strings.HasPrefix(m.Header.Get(events.HeaderReason), c.field+":") ||
			m.Header.Get(events.HeaderStatus) != string(events.StatusRejected) {
			t.Errorf("%s: dead letter %q with headers %v", c.id, m.Data, m.Header)
		}
	}
}

// deadLetters returns the dead-letter stream's messages by command ID.
func (b *bundle) deadLetters() map[string]*jetstream.RawStreamMsg {
	b.t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, events.StreamDeadLetter)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out[m.Header.Get(events.HeaderCommandID)] = m
	}
	return out
}
