package events

// What the schema tests share: the JSON Schema documents as Go values, a
// fully populated value of every wire type, and reflection over the
// encoded fields, tags and constants.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jsonSchema is the part of a JSON Schema document these tests compare with
// the Go code.
type jsonSchema struct {
	Schema               string              `json:"$schema"`
	Type                 string              `json:"type"`
	Properties           map[string]property `json:"properties"`
	Required             []string            `json:"required"`
	AdditionalProperties *bool               `json:"additionalProperties"`
	Not                  *struct {
		Required []string `json:"required"`
	} `json:"not"`
	Examples []json.RawMessage `json:"examples"`

	raw map[string]any // the whole document, for validate
}

type property struct {
	Type      any    `json:"type,omitempty"` // a type name, or a list of them
	Format    string `json:"format,omitempty"`
	Pattern   string `json:"pattern,omitempty"`
	MinLength *int64 `json:"minLength,omitempty"`
	MaxLength *int64 `json:"maxLength,omitempty"`
	Minimum   *int64 `json:"minimum,omitempty"`
	Maximum   *int64 `json:"maximum,omitempty"`
	Enum      []any  `json:"enum,omitempty"`
}

// types returns the JSON types p allows.
func (p property) types() []string {
	switch t := p.Type.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// enum returns p's enum values as sorted text.
func (p property) enum() []string {
	var out []string
	for _, v := range p.Enum {
		out = append(out, fmt.Sprint(v))
	}
	return slices.Sorted(slices.Values(out))
}

func loadSchema(t *testing.T, name string) jsonSchema {
	t.Helper()
	data, err := os.ReadFile("schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("%s is not valid JSON", name)
	}
	var s jsonSchema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(data, &s.raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Type != "object" || len(s.Properties) == 0 {
		t.Fatalf("%s: not a draft 2020-12 schema of an object with properties", name)
	}
	if id := "https://github.com/callcontrol/callcontrol/events/schema/" + name; s.raw["$id"] != id {
		t.Errorf("%s: $id = %v, want %s", name, s.raw["$id"], id)
	}
	return s
}

// wireType is a Go type of the contract with its JSON Schema.
type wireType struct {
	file string
	full any // every field set, so that every field is encoded
	// decode parses a payload as the consumers in this repository do; nil
	// means encoding/json, with unknown fields refused.
	decode func([]byte) (any, error)
}

// wireTypes lists every schema in schema/ with its Go type.
func wireTypes() []wireType {
	return []wireType{
		{"disconnect_command.schema.json", fullCommand(), func(b []byte) (any, error) { return DecodeDisconnect(b) }},
		{"result.schema.json", fullResult(), nil},
		{"agent_event.schema.json", fullAgentEvent(), nil},
		{"confirmation.schema.json", fullConfirmation(), nil},
		{"pending.schema.json", fullPending(), nil},
		{"session.schema.json", fullSession(), nil},
		{"session_event.schema.json", fullSessionEvent(), nil},
		{"call_state.schema.json", fullCallState(), nil},
	}
}

var schemaT0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// fullCommand has every field set, including the exclusive ExpiresAt and
// TTL, so that its encoding has every field name.
func fullCommand() DisconnectCommand {
	return DisconnectCommand{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", IssuedAt: schemaT0, ExpiresAt: schemaT0.Add(time.Minute),
		TTL: time.Second, CorrelationID: "case-1", RequestedBy: "crm", GUID: "secret", CallID: "1767366245-101",
	}
}

func fullResult() Result {
	return Result{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", Status: StatusFailed, Reason: "no_session",
		RetCode: "100-006", Attempts: 1, CorrelationID: "case-1", RequestedBy: "crm", CallID: "1767366245-101",
		IssuedAt: schemaT0, ExpiresAt: schemaT0.Add(time.Minute), CompletedAt: schemaT0.Add(time.Second), GatewayMillis: 12,
		StoredAt: schemaT0.Add(time.Millisecond),
	}
}

func fullAgentEvent() AgentEvent {
	return AgentEvent{
		AgentID: 59999, Type: EventCustomerRelease, CallID: "1767366245-101", Number: "13800001234",
		Content:     json.RawMessage(`{"callid":"1767366245-101","number":"13800001234"}`),
		GeneratedAt: schemaT0, ReceivedAt: schemaT0.Add(20 * time.Millisecond), GeneratedAtUnparsed: true,
	}
}

func fullConfirmation() Confirmation {
	return Confirmation{
		CommandID: "c-1", CorrelationID: "case-1", AgentID: 101, Number: "13800001234", Status: ConfirmationConfirmed,
		EventType: EventCallRelease, CallID: "1767366245-101", IssuedAt: schemaT0, AcceptedAt: schemaT0.Add(400 * time.Millisecond),
		ReleasedAt: schemaT0.Add(430 * time.Millisecond), ConfirmedAt: schemaT0.Add(450 * time.Millisecond), LatencyMillis: 430,
	}
}

func fullPending() Pending {
	return Pending{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", CorrelationID: "case-1", CallID: "1767366245-101",
		IssuedAt: schemaT0, AcceptedAt: schemaT0.Add(time.Second), Deadline: schemaT0.Add(16 * time.Second),
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
}

func fullSession() Session {
	return Session{
		GUID: "6d0f3c2e.AgentGateway1", AuthMode: 2, Node: "AgentGateway1", State: SessionInvalid,
		Reason: "retcode 100-006", UpdatedAt: schemaT0,
	}
}

func fullSessionEvent() SessionEvent {
	return SessionEvent{AgentID: 101, Kind: SessionInvalidated, Reason: "retcode 100-006", RetCode: "100-006", At: schemaT0}
}

func fullCallState() CallState {
	return CallState{
		AgentID: 101, Owner: "poller-1", Polling: true, ObservedAt: schemaT0.Add(time.Second),
		Calls:       []Call{{CallID: "1767366245-101", Parties: []string{"13800001234"}, Phase: CallTalking, Since: schemaT0}},
		Ended:       []EndedCall{{CallID: "1767366100-101", EndedAt: schemaT0.Add(-time.Minute)}},
		LastEvent:   EventCallRelease,
		LastEventAt: schemaT0,
	}
}

// encodedObject returns v's JSON encoding decoded into a map.
func encodedObject(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// encodedFields returns each field name of v's JSON encoding with the
// schema type of its value.
func encodedFields(t *testing.T, v any) map[string]string {
	t.Helper()
	types := map[string]string{}
	for k, v := range encodedObject(t, v) {
		types[k] = jsonType(v)
	}
	return types
}

// requiredByTags returns the JSON names of typ's fields that have neither
// omitempty nor omitzero, sorted.
func requiredByTags(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		o := strings.Split(opts, ",")
		if !slices.Contains(o, "omitempty") && !slices.Contains(o, "omitzero") {
			names = append(names, name)
		}
	}
	return slices.Sorted(slices.Values(names))
}

// constants parses the package for the string constants for which match
// (given the constant's name and type name, "" when untyped) is true, and
// returns their values sorted.
func constants(t *testing.T, match func(name, typ string) bool) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, v := range spec.Values {
				typ, _ := spec.Type.(*ast.Ident)
				if call, ok := v.(*ast.CallExpr); ok && len(call.Args) == 1 { // Status("x")
					typ, _ = call.Fun.(*ast.Ident)
					v = call.Args[0]
				}
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || i >= len(spec.Names) {
					continue
				}
				typName := ""
				if typ != nil {
					typName = typ.Name
				}
				if match(spec.Names[i].Name, typName) {
					s, _ := strconv.Unquote(lit.Value)
					values = append(values, s)
				}
			}
			return true
		})
	}
	if len(values) == 0 {
		t.Fatal("no matching constants found")
	}
	return slices.Sorted(slices.Values(values))
}

func show(p property) string {
	b, _ := json.Marshal(p)
	return string(b)
}
