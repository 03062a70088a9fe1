package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/callcontrol/callcontrol/internal/jsondup"
)

// Poll is the answer of one [Client.PollEvent].
type Poll struct {
	// Event is the one event the gateway returned, or nil when none was
	// queued within the gateway's hold (about 10 s).
	Event *Event

	// SetGUID is the rotated GUID from the Set-GUID header (dynamic
	// authentication), without the "JSESSIONID=" prefix, or "" when the
	// answer carried none. When set, use it for every later request of the
	// agent. A value that could not be sent as a header is ignored.
	SetGUID string
}

// Event is one agent event, e.g. AgentEvent_Customer_Release.
type Event struct {
	Type   string `json:"eventType"` // event name
	WorkNo string `json:"workNo"`    // agent ID (a JSON number is accepted too)

	// Content is the event's raw payload: null, a bare string (often a
	// callid) or an object whose key casing varies between events.
	Content json.RawMessage `json:"content"`

	// GenTime is when the gateway generated the event, ms since the Unix
	// epoch; 0 when absent (older gateways).
	GenTime int64 `json:"eventGenTime,omitempty"`
	// GenTimeUnparsed reports an eventGenTime that is not an integer
	// (GenTime is then 0): the event is kept, its time unknown. The value
	// itself is not kept: it could echo anything, a GUID included.
	GenTimeUnparsed bool `json:"-"`
}

// UnmarshalJSON implements [json.Unmarshaler]. It accepts workNo and
// eventGenTime as a string or a number, as gateway versions differ.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		Type    text            `json:"eventType"`
		WorkNo  text            `json:"workNo"`
		Content json.RawMessage `json:"content"`
		GenTime text            `json:"eventGenTime"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	// A repeated eventType, workNo or content (in any casing), or a key
	// repeated inside content (the poller reads callid and number from
	// it, in any casing), would leave the event's meaning to the parser.
	if err := jsondup.Check(b, jsondup.Options{Fold: true}); err != nil {
		return repeated(err)
	}
	*e = Event{Type: string(w.Type), WorkNo: string(w.WorkNo), Content: w.Content}
	if w.GenTime != "" {
		gen, err := strconv.ParseInt(string(w.GenTime), 10, 64)
		// Losing the event (and with it a confirmation) for its time would
		// be worse than not knowing when it was generated.
		e.GenTime, e.GenTimeUnparsed = gen, err != nil
	}
	return nil
}

// PollEvent fetches the agent's next event: GET agentevent/{agentID}. The
// gateway holds the request until an event is queued or about 10 s have
// passed, so the request is bounded by PollTimeout (or ctx's earlier
// deadline) instead of RequestTimeout.
//
// The poll is also the agent's heartbeat: poll again 200–500 ms after an
// empty answer and at once after an event. Run one poller per agent; a
// read removes the event from the gateway's queue. Errors are [*Error]
// values classified by [Classify]; an event in a lost answer is lost.
func (c *Client) PollEvent(ctx context.Context, agentID int, guid string) (Poll, error) {
	const op = "poll"
	if err := checkAgentID(op, agentID); err != nil {
		return Poll{}, err
	}
	if err := checkGUID(op, guid); err != nil {
		return Poll{}, err
	}
	r, err := c.do(ctx, call{
		op:      op,
		method:  http.MethodGet,
		path:    agentPath("agentevent", agentID),
		guid:    guid,
		timeout: c.pollTimeout,
		secrets: []string{guid},
	})
	if err != nil {
		return Poll{}, err
	}
	p := Poll{Event: r.env.Event}
	if g, ok := parseSetGUID(r.header); ok {
		p.SetGUID = g
	}
	return p, nil
}
