package poller

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
)

func TestContentFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		eventType, content string
		callID, number     string
	}{
		{"AgentEvent_Call_Release", `"1456403549-15"`, "1456403549-15", ""},
		{"AgentEvent_Hold", `"c-7"`, "c-7", ""},
		{"AgentEvent_Call_Out_Fail", `"c-8"`, "c-8", ""},
		{"AgentState_Ready", `"not a call id"`, "", ""},
		{"AgentEvent_Customer_Release", `{"callid":"c-1","number":"88880001"}`, "c-1", "88880001"},
		{"AgentEvent_Customer_Release", `{"CallID":"c-1","Number":"88880001"}`, "c-1", "88880001"},
		{"AgentEvent_Customer_Release", `{"callId":"c-1","NUMBER":88880001}`, "c-1", "88880001"},
		{"OUTBOUND_DETECT_EVENT", `{"callId":42,"detect":1}`, "42", ""},
		{"AgentEvent_Customer_Release", `{"callid":{"nested":true},"number":null}`, "", ""},
		{"AgentOther_InService", `null`, "", ""},
		{"AgentOther_InService", ``, "", ""},
		{"AgentEvent_Conference", `[1,2]`, "", ""},
		{"AgentEvent_Conference", `12`, "", ""},
	}
	for _, tt := range tests {
		callID, number := contentFields(tt.eventType, json.RawMessage(tt.content))
		if callID != tt.callID || number != tt.number {
			t.Errorf("contentFields(%s, %s) = %q, %q, want %q, %q", tt.eventType, tt.content, callID, number, tt.callID, tt.number)
		}
	}
}

func TestAgentEvent(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ev := agentEvent(101, &gateway.Event{Type: "AgentOther_PhoneAlerting", WorkNo: "101"}, at)
	if string(ev.Content) != "null" || !ev.GeneratedAt.IsZero() || !ev.ReceivedAt.Equal(at) {
		t.Errorf("event without content or eventGenTime: %+v", ev)
	}
	ev = agentEvent(101, &gateway.Event{Type: "AgentEvent_Call_Release", Content: []byte(` "c-1" `), GenTime: 1700000000123}, at)
	if string(ev.Content) != `"c-1"` || ev.CallID != "c-1" || !ev.GeneratedAt.Equal(time.UnixMilli(1700000000123)) {
		t.Errorf("event with content and eventGenTime: %+v", ev)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Error(err)
	}
	// Found by FuzzDecodeEvent: an eventGenTime after year 9999 made the
	// event unencodable, and it was republished with an empty payload.
	for _, gen := range []int64{253402300800000, 1 << 62, -1} {
		m, ev := eventMsg(101, &gateway.Event{Type: "AgentEvent_Hold", Content: []byte(`"c-1"`), GenTime: gen}, at)
		if len(m.Data) == 0 || !ev.GeneratedAt.IsZero() {
			t.Errorf("eventGenTime %d: payload %q, generated_at %v", gen, m.Data, ev.GeneratedAt)
		}
	}
}

// An eventGenTime that does not parse loses nothing: the event is kept,
// dated by its receipt and marked; a JSESSIONID in the content (a session
// secret) is never republished.
func TestAgentEventKeepsWhatItCan(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	m, ev := eventMsg(101, &gateway.Event{Type: "AgentEvent_Customer_Release", GenTimeUnparsed: true,
		Content: []byte(`{"callid":"c-1","number":"5550101","note":"JSESSIONID=0f0e-1.AgentGateway1","Jsessionid":"x.AgentGateway0"}`)}, at)
	if !ev.GeneratedAtUnparsed || !ev.GeneratedAt.IsZero() || !ev.ReceivedAt.Equal(at) || ev.CallID != "c-1" || ev.Number != "5550101" {
		t.Errorf("event with a bad eventGenTime: %+v", ev)
	}
	if strings.Contains(strings.ToLower(string(m.Data)), "agentgateway") || !strings.Contains(string(m.Data), `"generated_at_unparsed":true`) {
		t.Errorf("republished %s", m.Data)
	}
}

func TestEventMsgID(t *testing.T) {
	t.Parallel()
	at := time.Now()
	gen := &gateway.Event{Type: "AgentEvent_Call_Release", Content: []byte(`"c-1"`), GenTime: 1700000000000}
	noGen := &gateway.Event{Type: "AgentEvent_Call_Release", Content: []byte(`"c-1"`)}
	id := eventMsgID(101, gen, at)
	if !regexp.MustCompile(`^ev-[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("ID %q, want ev- and 32 hex digits", id)
	}
	if eventMsgID(101, gen, at.Add(time.Hour)) != id {
		t.Error("with eventGenTime the ID depends on the arrival time")
	}
	for name, other := range map[string]string{
		"other agent":   eventMsgID(102, gen, at),
		"other type":    eventMsgID(101, &gateway.Event{Type: "AgentEvent_Hold", Content: gen.Content, GenTime: gen.GenTime}, at),
		"other content": eventMsgID(101, &gateway.Event{Type: gen.Type, Content: []byte(`"c-2"`), GenTime: gen.GenTime}, at),
		"other time":    eventMsgID(101, &gateway.Event{Type: gen.Type, Content: gen.Content, GenTime: gen.GenTime + 1}, at),
		"no gen time":   eventMsgID(101, noGen, at),
	} {
		if other == id {
			t.Errorf("%s: same ID", name)
		}
	}
	if eventMsgID(101, noGen, at) == eventMsgID(101, noGen, at.Add(time.Nanosecond)) {
		t.Error("without eventGenTime two arrivals share an ID")
	}
}
