package poller

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
)

var (
	eventSubjectRE = regexp.MustCompile(`^callcontrol\.events\.[1-9][0-9]*\.[A-Za-z0-9_-]+$`)
	eventMsgIDRE   = regexp.MustCompile(`^ev-[0-9a-f]{32}$`)
)

// FuzzDecodeEvent decodes an arbitrary "event" object of a poll reply as
// the gateway client does and turns it into the message the poller
// republishes, checking that:
//
//   - nothing panics, and every event the client decodes is republished:
//     the payload is never empty, always valid JSON, and decodes back into
//     the same events.AgentEvent (a round trip);
//   - the subject is callcontrol.events.<agent>.<token>, one valid NATS
//     token whatever the eventType holds (dots, wildcards, spaces, CR/LF);
//   - the only header is a Nats-Msg-Id of "ev-" and 32 hex digits,
//     the same for the same event (so a retried publish is stored once);
//   - the payload is bounded by the size of the event received.
//
// The seed corpus in testdata/fuzz/FuzzDecodeEvent holds every event type
// of cc-gateway.md section 5 with its documented content, and odd ones.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(101, []byte(`{"eventType":"AgentEvent_Call_Release","workNo":"101","content":"1456403549-15"}`))
	f.Add(4242, []byte(`{"eventType":"AgentEvent_Hold","workNo":"4242","content":"c-9","eventGenTime":"253402300800000"}`))
	f.Add(59999, []byte(`{"eventType":"AgentEvent_Customer_Release","workNo":59999,"content":{"callid":"1456403549-15","number":"88880001"},"eventGenTime":1700000000000}`))
	receivedAt := time.Date(2026, 1, 2, 15, 4, 5, 6, time.UTC)
	f.Fuzz(func(t *testing.T, agent int, data []byte) {
		agent = events.AgentIDMin + int(uint(agent)%uint(events.AgentIDMax-events.AgentIDMin+1))
		var gev gateway.Event
		if json.Unmarshal(data, &gev) != nil {
			return
		}
		m, ev := eventMsg(agent, &gev, receivedAt)
		if !eventSubjectRE.MatchString(m.Subject) || m.Subject != events.AgentEventSubject(agent, gev.Type) ||
			!bytes.HasPrefix([]byte(m.Subject), []byte("callcontrol.events."+strconv.Itoa(agent)+".")) {
			t.Fatalf("subject %q for agent %d type %q", m.Subject, agent, gev.Type)
		}
		if len(m.Header) != 1 || !eventMsgIDRE.MatchString(m.Header.Get(events.HeaderMsgID)) {
			t.Fatalf("headers %q", m.Header)
		}
		if again, _ := eventMsg(agent, &gev, receivedAt); again.Header.Get(events.HeaderMsgID) != m.Header.Get(events.HeaderMsgID) {
			t.Fatal("the same event got two message IDs")
		}
		if len(m.Data) == 0 || len(m.Data) > 20*len(data)+512 {
			t.Fatalf("payload of %d bytes for an event of %d: %q", len(m.Data), len(data), m.Data)
		}
		var back events.AgentEvent
		if err := json.Unmarshal(m.Data, &back); err != nil {
			t.Fatalf("payload %q does not decode: %v", m.Data, err)
		}
		if back.AgentID != agent || back.Type != gev.Type || back.CallID != ev.CallID || back.Number != ev.Number ||
			!back.ReceivedAt.Equal(receivedAt) || !back.GeneratedAt.Equal(ev.GeneratedAt) ||
			!reflect.DeepEqual(jsonValue(t, back.Content), jsonValue(t, ev.Content)) {
			t.Fatalf("round trip of %+v through %s gave %+v", ev, m.Data, back)
		}
	})
}

// jsonValue decodes raw, numbers kept as their literal. Bytes may differ
// after a round trip (json.Marshal escapes '&', '<', '>' in raw content),
// values may not.
func jsonValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("content %q is not JSON: %v", raw, err)
	}
	return v
}
