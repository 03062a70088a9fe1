package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/jsondup"
)

// ruleTime is the rule of issued_at and expires_at. Years are limited to
// 0001-9999 UTC because a later one cannot be written back in RFC 3339 (a
// Result carrying it would fail to encode), and the zero instant would be
// taken for an absent time.
const ruleTime = "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, in years 0001-9999 UTC"

// wireField is one known field of a command and where it is decoded to.
type wireField struct {
	name string // exactly the JSON tag of the wire field
	dst  any    // *string, *int or *int64
}

func (w *wire) fields() []wireField {
	return []wireField{
		{"command_id", &w.CommandID}, {"agent_id", &w.AgentID}, {"number", &w.Number},
		{"issued_at", &w.IssuedAt}, {"expires_at", &w.ExpiresAt}, {"ttl_ms", &w.TTLMillis},
		{"correlation_id", &w.CorrelationID}, {"requested_by", &w.RequestedBy}, {"guid", &w.GUID},
		{"call_id", &w.CallID},
	}
}

// decode reads the known fields of a command object by their exact names:
// encoding/json alone also matches "AGENT_ID" or "Agent_Id", so a field that
// other parsers (and the JSON Schema) see as unknown could override a known
// one. It reads every field even after an error, so that the caller can
// salvage the others, and returns the first error in field order. It checks
// each field's type and form but not the rules across fields ([Validate]).
func decode(data []byte) (DisconnectCommand, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return DisconnectCommand{}, jsonError(err)
	}
	if obj == nil {
		return DisconnectCommand{}, invalid("payload", "must be a JSON object, got null")
	}
	if err := repeatedKey(data, obj); err != nil {
		return DisconnectCommand{}, err
	}
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	var w wire
	for _, f := range w.fields() {
		if raw, ok := obj[f.name]; ok {
			keep(decodeField(f, raw))
		}
	}
	c := DisconnectCommand{
		CommandID: w.CommandID, AgentID: w.AgentID, Number: w.Number,
		CorrelationID: w.CorrelationID, RequestedBy: w.RequestedBy, GUID: w.GUID,
		CallID: w.CallID,
	}
	if _, ok := obj["call_id"]; ok && w.CallID == "" {
		keep(invalid("call_id", ruleCallID)) // present means a call: "" names none
	}
	var err error
	if _, ok := obj["issued_at"]; ok {
		c.IssuedAt, err = parseTime("issued_at", w.IssuedAt)
		keep(err)
	}
	if _, ok := obj["expires_at"]; ok {
		c.ExpiresAt, err = parseTime("expires_at", w.ExpiresAt)
		keep(err)
	}
	if _, ok := obj["ttl_ms"]; ok {
		if w.TTLMillis < 1 || w.TTLMillis > MaxTTL.Milliseconds() {
			keep(invalid("ttl_ms", fmt.Sprintf("must be between 1 and %d", MaxTTL.Milliseconds())))
		} else {
			c.TTL = time.Duration(w.TTLMillis) * time.Millisecond
		}
	}
	return c, first
}

// decodeField decodes raw into f.dst. Its error never quotes the value: it
// may be a phone number, and the error becomes a logged rejection reason.
func decodeField(f wireField, raw json.RawMessage) error {
	want := "a string"
	if _, ok := f.dst.(*string); !ok {
		want = "an integer"
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return invalid(f.name, "must be "+want+", got null")
	}
	err := json.Unmarshal(raw, f.dst)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return invalid(f.name, "must be "+want)
	}
	got, literal, _ := strings.Cut(te.Value, " ")
	if got == "number" && want == "an integer" {
		if strings.ContainsAny(literal, ".eE") {
			return invalid(f.name, "must be an integer, got a number with a fraction or an exponent")
		}
		return invalid(f.name, "must be an integer, got a number out of range")
	}
	return invalid(f.name, fmt.Sprintf("must be %s, got %s", want, got))
}

// jsonError explains why data is not a JSON object.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got, _, _ := strings.Cut(te.Value, " ")
		return invalid("payload", "must be a JSON object, got "+got)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalid("payload", fmt.Sprintf("must be a JSON object: malformed JSON at byte %d", se.Offset))
	}
	return invalid("payload", "must be a JSON object: "+err.Error())
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.IsZero() || !validTime(t) {
		return time.Time{}, invalid(field, ruleTime)
	}
	return t, nil
}

// validTime reports whether t is zero (absent) or can be written in RFC 3339
// in UTC, as [DisconnectCommand.MarshalJSON] and Result's encoding do.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return t.IsZero() || y >= 1 && y <= 9999
}

// salvage returns the fields of a rejected command that pass their own rule,
// so that the rejection can be correlated without echoing bad input: a
// command_id or correlation_id with a line break would end up in the
// result's headers. The GUID, a secret, is dropped.
func (c DisconnectCommand) salvage() DisconnectCommand {
	var s DisconnectCommand
	if ValidCommandID(c.CommandID) {
		s.CommandID = c.CommandID
	}
	if ValidAgentID(c.AgentID) {
		s.AgentID = c.AgentID
	}
	if ValidNumber(c.Number) {
		s.Number = c.Number
	}
	if validText(c.CorrelationID) {
		s.CorrelationID = c.CorrelationID
	}
	if validText(c.RequestedBy) {
		s.RequestedBy = c.RequestedBy
	}
	if ValidCallID(c.CallID) {
		s.CallID = c.CallID
	}
	if validTime(c.IssuedAt) {
		s.IssuedAt = c.IssuedAt
	}
	if validTime(c.ExpiresAt) {
		s.ExpiresAt = c.ExpiresAt
	}
	if c.TTL > 0 && c.TTL <= MaxTTL {
		s.TTL = c.TTL
	}
	return s
}

// ruleOnce is the rule of a field whose key appears twice.
const ruleOnce = "must appear once"

// repeatedKey rejects a command that repeats a key in one object, at any
// depth: encoding/json keeps the last copy, other readers of the same
// bytes (the JSON Schema, a dead-letter viewer) may take the first, so the
// command has no single meaning. Keys are compared exactly, as [decode]
// matches them. obj is data decoded: a top-level repeat makes it hold
// fewer keys than data has members, which a byte count tells without
// allocating; only then, and for nested objects and arrays (unknown
// fields), the token scan of [jsondup.Check] runs. A repeated field of the
// command is named; any other key is not echoed (it could be anything,
// and the rule ends up in logs and headers).
func repeatedKey(data []byte, obj map[string]json.RawMessage) error {
	fail := func(err error) error {
		var e *jsondup.Error
		if errors.As(err, &e) && e.Depth == 1 && knownField(e.Key) {
			return invalid(e.Key, ruleOnce)
		}
		return invalid("payload", "must not repeat a key within one object")
	}
	if topLevelMembers(data) != len(obj) {
		if err := jsondup.Check(data, jsondup.Options{}); err != nil {
			return fail(err)
		}
	}
	for _, raw := range obj {
		if raw[0] == '{' || raw[0] == '[' {
			if err := jsondup.Check(raw, jsondup.Options{}); err != nil {
				return fail(err)
			}
		}
	}
	return nil
}

// knownField reports whether name is a field of the command's wire form.
func knownField(name string) bool {
	var w wire
	for _, f := range w.fields() {
		if f.name == name {
			return true
		}
	}
	return false
}

// topLevelMembers counts the members of the JSON object in data, which
// must be valid JSON (it was decoded): the commas outside strings at depth
// 1, plus one unless the object is empty.
func topLevelMembers(data []byte) int {
	depth, commas, inString, escaped, empty := 0, 0, false, false, true
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
			if depth == 1 {
				continue
			}
		case b == '}' || b == ']':
			depth--
		case b == ',' && depth == 1:
			commas++
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			continue
		}
		if depth >= 1 {
			empty = false
		}
	}
	if empty {
		return 0
	}
	return commas + 1
}
