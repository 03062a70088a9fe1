package worker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// A command whose issued_at is ahead of the time JetStream stored it by
// more than MaxClockSkew, or whose expires_at is further away than MaxTTL,
// is rejected naming the field and never sent: it would otherwise live
// that much longer (a late disconnect hangs up the agent's next call).
// One within the skew is executed.
func TestFutureTimesRejected(t *testing.T) {
	cfg := testConfig()
	cfg.MaxClockSkew = 2 * time.Second
	b := setup(t, cfg, gatewaysim.Config{})
	b.signIn([]int{501, 502}, customer)
	b.startWorker(nil)
	now := time.Now().UTC()
	cmd := func(id string, agent int, times string) []byte {
		return []byte(fmt.Sprintf(`{"command_id":%q,"agent_id":%d,"number":%q%s}`, id, agent, customer(agent), times))
	}
	at := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	cases := []struct{ id, field string }{{"ahead-10m", "issued_at"}, {"expires-2h", "expires_at"}}
	b.publishRaw(cmd("ahead-10m", 501, `,"issued_at":"`+at(now.Add(10*time.Minute))+`","ttl_ms":30000`), "ahead-10m")
	b.publishRaw(cmd("expires-2h", 501, `,"expires_at":"`+at(now.Add(2*time.Hour))+`"`), "expires-2h")
	b.publishRaw(cmd("ahead-1s", 502, `,"issued_at":"`+at(now.Add(time.Second))+`","ttl_ms":30000`), "ahead-1s")
	res := b.waitResults(3, 15*time.Second)
	for _, c := range cases {
		r := res[c.id]
		if len(r) != 1 || r[0].Status != events.StatusRejected || !strings.HasPrefix(r[0].Reason, c.field+":") || r[0].Attempts != 0 {
			t.Errorf("%s: results %+v, want one rejected naming %s", c.id, r, c.field)
		}
	}
	if r := res["ahead-1s"]; len(r) != 1 || r[0].Status != events.StatusAccepted {
		t.Errorf("ahead-1s (within the skew): %+v, want accepted", r)
	}
	for _, d := range b.sim.Disconnects() {
		if d.AgentID != 502 {
			t.Errorf("a rejected command reached the gateway: %+v", d)
		}
	}
}

// A command whose Nats-Msg-Id is not its command_id is rejected naming the
// header, never sent, and its result is filed under the Nats-Msg-Id, so
// that it cannot take the place of the result of the command that owns
// that command_id. Without the header the command is executed (the ledger
// still keeps it from running twice); a dlq replay's ID is accepted with
// its Callcontrol-Replay-Of header only.
func TestMsgIDMismatchRejected(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{501, 502, 503}, customer)
	b.startWorker(nil)
	body := func(id string, agent int) []byte {
		return []byte(fmt.Sprintf(`{"command_id":%q,"agent_id":%d,"number":%q}`, id, agent, customer(agent)))
	}
	b.publishRaw(body("owned-1", 501), "other-1")
	b.publishRaw(body("fake-replay", 501), "replay-fake-replay-3") // no Callcontrol-Replay-Of
	b.publishRaw(body("no-header", 502), "")
	m := body("replayed-1", 503)
	b.publishRawHeaders(m, map[string]string{events.HeaderMsgID: "replay-replayed-1-4", events.HeaderReplayOf: "9"})
	res := b.waitResults(4, 15*time.Second)
	for _, id := range []string{"other-1", "replay-fake-replay-3"} {
		r := res[id]
		if len(r) != 1 || r[0].Status != events.StatusRejected || r[0].Reason != "Nats-Msg-Id: must equal command_id" {
			t.Errorf("%s: results %+v, want one rejected: Nats-Msg-Id: must equal command_id", id, r)
		}
	}
	if r := res["owned-1"]; len(r) != 0 {
		t.Errorf("owned-1 got a result from a message that is not its own: %+v", r)
	}
	if r := res["no-header"]; len(r) != 1 || r[0].Status != events.StatusAccepted {
		t.Errorf("no-header: %+v, want accepted", r)
	}
	if r := res["replayed-1"]; len(r) != 1 || r[0].Status != events.StatusAccepted {
		t.Errorf("replayed-1: %+v, want accepted", r)
	}
	for _, d := range b.sim.Disconnects() {
		if d.AgentID == 501 {
			t.Errorf("a rejected command reached the gateway: %+v", d)
		}
	}
}
