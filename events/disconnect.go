package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Limits of a [DisconnectCommand]. AgentIDMin/Max and the number length come
// from the gateway's disconnect interface; the rest are ours.
const (
	MaxCommandSize  = 8 << 10 // bytes of JSON
	AgentIDMin      = 101
	AgentIDMax      = 59999
	MaxNumberDigits = 24
	MaxCommandIDLen = 64
	MaxTextLen      = 128 // correlation_id, requested_by, guid
	MaxTTL          = time.Hour
)

// DisconnectCommand asks a worker to release the party with Number from the
// last call of agent AgentID (POST voicecall/{agentid}/disconnect/{number}).
//
// A command expires at ExpiresAt when set, otherwise at IssuedAt + TTL. A
// missing IssuedAt is taken as the time JetStream stored the command, and a
// missing TTL as the worker's default TTL. An expired command is never sent
// to the gateway: a late disconnect could hang up the agent's next call.
type DisconnectCommand struct {
	// CommandID identifies the command end to end: it must also be sent as
	// the Nats-Msg-Id, it keys the idempotency ledger and it is copied into
	// the result. 1-64 letters, digits, '-' or '_'. Required.
	CommandID string `json:"command_id"`
	// AgentID is the agent's work number, 101-59999. Required.
	AgentID int `json:"agent_id"`
	// Number is the party to release, 1-24 digits. Required.
	Number string `json:"number"`
	// IssuedAt is when the requester issued the command. Optional.
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// ExpiresAt is the absolute deadline. Optional; excludes TTL.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// TTL is the lifetime from IssuedAt, sent as ttl_ms (1 to 3,600,000
	// milliseconds). Optional; excludes ExpiresAt.
	TTL time.Duration `json:"-"`
	// CorrelationID is the requester's own reference, copied to the result.
	CorrelationID string `json:"correlation_id,omitempty"`
	// RequestedBy names the requesting system or user, for audit.
	RequestedBy string `json:"requested_by,omitempty"`
	// GUID overrides the session registry's GUID for this agent. It is a
	// secret: it is never logged and never copied into any event.
	GUID string `json:"guid,omitempty"`
	// CallID scopes the command to one call: the gateway's call ID as the
	// agent events carry it, 1-64 printable ASCII without spaces. Optional.
	// With it the command is executed only while that call is the agent's
	// last call and Number one of its parties; without it, the worker pins
	// the call that was the agent's last call when the command was stored.
	CallID string `json:"call_id,omitempty"`
}

// wire is the JSON shape of a command. Times are strings here so that a bad
// value is reported with its field name.
type wire struct {
	CommandID     string `json:"command_id"`
	AgentID       int    `json:"agent_id"`
	Number        string `json:"number"`
	IssuedAt      string `json:"issued_at,omitempty"`
	ExpiresAt     string `json:"expires_at,omitempty"`
	TTLMillis     int64  `json:"ttl_ms,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	RequestedBy   string `json:"requested_by,omitempty"`
	GUID          string `json:"guid,omitempty"`
	CallID        string `json:"call_id,omitempty"`
}

// MarshalJSON encodes c in its wire form.
func (c DisconnectCommand) MarshalJSON() ([]byte, error) {
	w := wire{
		CommandID: c.CommandID, AgentID: c.AgentID, Number: c.Number,
		TTLMillis: c.TTL.Milliseconds(), CorrelationID: c.CorrelationID,
		RequestedBy: c.RequestedBy, GUID: c.GUID, CallID: c.CallID,
	}
	if !c.IssuedAt.IsZero() {
		w.IssuedAt = c.IssuedAt.UTC().Format(time.RFC3339Nano)
	}
	if !c.ExpiresAt.IsZero() {
		w.ExpiresAt = c.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// DecodeDisconnect parses and validates a command. Any failure is a
// *[ValidationError] naming the field and the rule it breaks; the returned
// command then holds only the fields that were readable and valid on their
// own (its CommandID may be useful for the rejection), never a value that
// breaks its rule. Field names are matched exactly. Unknown fields are
// ignored so that requesters can be newer than workers; known fields must
// have the documented type, and null is not accepted for them.
func DecodeDisconnect(data []byte) (DisconnectCommand, error) {
	if len(data) > MaxCommandSize {
		return DisconnectCommand{}, invalid("payload", fmt.Sprintf("must be at most %d bytes, got %d", MaxCommandSize, len(data)))
	}
	c, err := decode(data)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return c.salvage(), err
	}
	return c, nil
}

// Validate checks every field rule and returns the first broken one as a
// *[ValidationError].
func (c *DisconnectCommand) Validate() error {
	switch {
	case c.CommandID == "":
		return invalid("command_id", "is required")
	case !ValidCommandID(c.CommandID):
		return invalid("command_id", "must be 1-64 letters, digits, '-' or '_'")
	case c.AgentID == 0:
		return invalid("agent_id", "is required")
	case !ValidAgentID(c.AgentID):
		return invalid("agent_id", fmt.Sprintf("must be between %d and %d, got %d", AgentIDMin, AgentIDMax, c.AgentID))
	case c.Number == "":
		return invalid("number", "is required")
	case !ValidNumber(c.Number):
		return invalid("number", fmt.Sprintf("must be 1-%d digits (0-9) only", MaxNumberDigits))
	case !c.ExpiresAt.IsZero() && c.TTL != 0:
		return invalid("expires_at", "must not be combined with ttl_ms")
	case !c.ExpiresAt.IsZero() && !c.IssuedAt.IsZero() && !c.ExpiresAt.After(c.IssuedAt):
		return invalid("expires_at", "must be after issued_at")
	case c.TTL < 0 || c.TTL > MaxTTL:
		return invalid("ttl_ms", fmt.Sprintf("must be between 1 and %d", MaxTTL.Milliseconds()))
	case !validTime(c.IssuedAt):
		return invalid("issued_at", ruleTime)
	case !validTime(c.ExpiresAt):
		return invalid("expires_at", ruleTime)
	}
	if c.CallID != "" && !ValidCallID(c.CallID) {
		return invalid("call_id", ruleCallID)
	}
	for _, f := range []struct{ name, v string }{
		{"correlation_id", c.CorrelationID}, {"requested_by", c.RequestedBy}, {"guid", c.GUID},
	} {
		if !validText(f.v) {
			return invalid(f.name, fmt.Sprintf("must be at most %d printable ASCII characters without spaces", MaxTextLen))
		}
	}
	return nil
}

// Deadline returns when c expires: ExpiresAt, or IssuedAt (stored when
// IssuedAt is zero) plus TTL (defaultTTL when TTL is zero). It is never later
// than 9999-12-31T23:59:59.999999999Z, the last time a [Result] can carry.
func (c *DisconnectCommand) Deadline(stored time.Time, defaultTTL time.Duration) time.Time {
	if !c.ExpiresAt.IsZero() {
		return c.ExpiresAt
	}
	base, ttl := c.IssuedAt, c.TTL
	if base.IsZero() {
		base = stored
	}
	if ttl == 0 {
		ttl = defaultTTL
	}
	if d := base.Add(ttl); d.Before(maxTime) {
		return d
	}
	return maxTime
}

// maxTime is the latest time that RFC 3339 can represent.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// ruleCallID is the rule of call_id.
var ruleCallID = fmt.Sprintf("must be 1-%d printable ASCII characters without spaces", MaxCallIDLen)

// ValidNumber reports whether n is 1 to [MaxNumberDigits] ASCII digits, the
// only form that may be put into the gateway's URL path.
func ValidNumber(n string) bool {
	if len(n) == 0 || len(n) > MaxNumberDigits {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// ValidAgentID reports whether id is an agent ID: AgentIDMin to AgentIDMax.
func ValidAgentID(id int) bool { return id >= AgentIDMin && id <= AgentIDMax }

// ValidCommandID reports whether id is a well-formed command_id.
func ValidCommandID(id string) bool { return len(id) <= MaxCommandIDLen && isToken(id) }

// ValidationError says which field of a command breaks which rule.
type ValidationError struct {
	Field string // JSON name of the field, or "payload"
	Rule  string // what the value must be
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Rule }

func invalid(field, rule string) error { return &ValidationError{Field: field, Rule: rule} }

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return s != ""
}

// validText reports whether s is a well-formed correlation_id, requested_by
// or guid: visible ASCII only, so that it is safe in a header or a log line.
func validText(s string) bool { return len(s) <= MaxTextLen && isVisibleASCII(s) }

func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
