package poller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go"
)

// eventShutdownService is the gateway event of a signed-out agent.
const eventShutdownService = "AgentOther_ShutdownService"

// onEvent applies an event to the agent's call state (in memory; its
// writer stores it), republishes it (before anything else waits: once the
// gateway handed it out it exists nowhere else), hands it to the
// confirmer and handles a sign-out. It returns why the loop stops, or "".
func (p *Poller) onEvent(work context.Context, st *agentState, calls *callTracker, gev *gateway.Event, receivedAt time.Time) string {
	m, ev := eventMsg(st.agent, gev, receivedAt)
	if ev.GeneratedAtUnparsed {
		p.cfg.Metrics.EventTimeUnparsed()
	}
	calls.apply(ev, receivedAt)
	if err := p.publish(work, m); err != nil {
		p.log.Error().Err(err).Int(keyAgentID, st.agent).Str(keyEvent, ev.Type).Msg("agent event lost: not stored")
		return stopPublish
	}
	p.conf.observe(work, ev)
	if ev.Type == eventShutdownService {
		return p.signedOut(work, st)
	}
	return ""
}

// eventMsg returns the message that republishes gev, and its payload.
func eventMsg(agent int, gev *gateway.Event, receivedAt time.Time) (*nats.Msg, events.AgentEvent) {
	ev := agentEvent(agent, gev, receivedAt)
	m := nats.NewMsg(events.AgentEventSubject(ev.AgentID, ev.Type))
	m.Data, _ = json.Marshal(ev) // valid raw JSON and times in years 1..9999 always encode
	m.Header.Set(events.HeaderMsgID, eventMsgID(agent, gev, receivedAt))
	return m, ev
}

// agentEvent converts a gateway event. It never fails: CallID and Number
// are filled only when the content holds them.
func agentEvent(agent int, gev *gateway.Event, receivedAt time.Time) events.AgentEvent {
	content := json.RawMessage(bytes.TrimSpace(gev.Content))
	if len(content) == 0 || !json.Valid(content) {
		content = json.RawMessage("null")
	}
	content = redactSessionCookie(content)
	ev := events.AgentEvent{AgentID: agent, Type: gev.Type, Content: content, ReceivedAt: receivedAt.UTC(),
		GeneratedAtUnparsed: gev.GenTimeUnparsed}
	if gen := time.UnixMilli(gev.GenTime).UTC(); gev.GenTime > 0 && gen.Year() <= 9999 {
		// A later eventGenTime cannot be written in RFC 3339: the event
		// would not encode and go out empty. Such a time is garbage anyway.
		ev.GeneratedAt = gen
	}
	ev.CallID, ev.Number = contentFields(gev.Type, content)
	return ev
}

// redactSessionCookie replaces the value of every JSESSIONID in content, a
// session secret that must not be republished, by "[redacted]". The
// result is still valid JSON: only characters inside a value are replaced.
func redactSessionCookie(content json.RawMessage) json.RawMessage {
	if !bytes.Contains(bytes.ToLower(content), []byte("jsessionid")) {
		return content
	}
	out := gateway.RedactSessionCookies(content)
	if !json.Valid(out) {
		return json.RawMessage("null")
	}
	return out
}

// eventMsgID is the Nats-Msg-Id of an event: "ev-" and 32 hex digits of
// SHA-256 over the agent, the event type, eventGenTime and the content as
// received, plus receivedAt (taken once, when the reply arrived) when the
// gateway sent no eventGenTime.
func eventMsgID(agent int, gev *gateway.Event, receivedAt time.Time) string {
	h := sha256.New()
	h.Write(strconv.AppendInt(nil, int64(agent), 10))
	h.Write([]byte{0})
	h.Write([]byte(gev.Type))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, gev.GenTime, 10))
	h.Write([]byte{0})
	h.Write(gev.Content)
	if gev.GenTime == 0 {
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, receivedAt.UnixNano(), 10))
	}
	return "ev-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// contentFields reads the call ID and the party number from an event's
// content: a bare string is the call ID of release, hold and failure
// events; an object's keys match in any casing (callid, callId, CallID,
// number, Number). Anything else yields nothing.
func contentFields(eventType string, content json.RawMessage) (callID, number string) {
	switch {
	case len(content) == 0:
		return "", ""
	case content[0] == '"':
		if bareCallID(eventType) {
			_ = json.Unmarshal(content, &callID)
		}
		return callID, ""
	case content[0] != '{':
		return "", ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(content, &obj) != nil {
		return "", ""
	}
	for k, v := range obj {
		switch strings.ToLower(k) {
		case "callid":
			callID = scalar(v)
		case "number":
			number = scalar(v)
		}
	}
	return callID, number
}

// bareCallID reports whether a string content of eventType is a call ID.
func bareCallID(eventType string) bool {
	for _, suffix := range []string{"_Release", "_Hold", "_Fail"} {
		if strings.HasSuffix(eventType, suffix) {
			return true
		}
	}
	return false
}

// scalar returns a JSON string's value or a number's text, else "".
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}
