package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every schema in schema/ is compared with a Go type.
func TestEverySchemaHasGoType(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("schema/*")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, wt := range wireTypes() {
		want = append(want, "schema/"+wt.file)
	}
	if got := slices.Sorted(slices.Values(files)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("schema/ holds %v, the tests compare %v", got, want)
	}
}

func TestSchemaFieldsMatchGo(t *testing.T) {
	t.Parallel()
	for _, wt := range wireTypes() {
		t.Run(wt.file, func(t *testing.T) {
			t.Parallel()
			s := loadSchema(t, wt.file)
			v := reflect.ValueOf(wt.full)
			for i := range v.NumField() {
				if v.Field(i).IsZero() {
					t.Fatalf("the full %T leaves %s zero: set it so that it is encoded", wt.full, v.Type().Field(i).Name)
				}
			}
			fields := encodedFields(t, wt.full)
			if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Fatalf("schema properties %v, Go encodes %v", got, want)
			}
			for name, typ := range fields {
				if !slices.Contains(s.Properties[name].types(), typ) {
					t.Errorf("%s: schema type %v, Go encodes %q", name, s.Properties[name].Type, typ)
				}
			}
			for i := range v.NumField() {
				f := v.Type().Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				isTime := f.Type == reflect.TypeFor[time.Time]()
				if p, ok := s.Properties[name]; ok && isTime != (p.Format == "date-time") {
					t.Errorf("%s: format %q, Go type %v", name, p.Format, f.Type)
				}
			}
		})
	}
}

// The command schema's required fields are exactly those whose absence
// DecodeDisconnect rejects.
func TestCommandSchemaRequired(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "disconnect_command.schema.json")
	if want := []string{"command_id", "agent_id", "number"}; !slices.Equal(s.Required, want) {
		t.Errorf("required = %v, want %v", s.Required, want)
	}
	for name := range s.Properties {
		c := fullCommand()
		if name == "expires_at" {
			c.TTL = 0
		} else {
			c.ExpiresAt = time.Time{}
		}
		obj := map[string]json.RawMessage{}
		data, _ := json.Marshal(c)
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		delete(obj, name)
		data, _ = json.Marshal(obj)
		_, err := DecodeDisconnect(data)
		if required := slices.Contains(s.Required, name); required != (err != nil) {
			t.Errorf("without %s: required %v in the schema, DecodeDisconnect error %v", name, required, err)
		}
	}
	if s.Not == nil || !slices.Equal(s.Not.Required, []string{"expires_at", "ttl_ms"}) {
		t.Error(`want "not": {"required": ["expires_at", "ttl_ms"]}: they exclude each other`)
	}
}

// The other schemas' required fields are exactly those Go always encodes:
// the fields without omitempty or omitzero.
func TestSchemaRequired(t *testing.T) {
	t.Parallel()
	for _, wt := range wireTypes() {
		s := loadSchema(t, wt.file)
		if s.AdditionalProperties == nil || !*s.AdditionalProperties {
			t.Errorf("%s: additionalProperties must be true: unknown fields are ignored", wt.file)
		}
		if wt.file == "disconnect_command.schema.json" {
			continue // TestCommandSchemaRequired
		}
		typ := reflect.TypeOf(wt.full)
		tagged := requiredByTags(typ)
		always := slices.Sorted(maps.Keys(encodedFields(t, reflect.Zero(typ).Interface())))
		if !slices.Equal(tagged, always) {
			t.Fatalf("%v: fields without omitempty/omitzero %v, the zero value encodes %v", typ, tagged, always)
		}
		if got := slices.Sorted(slices.Values(s.Required)); !slices.Equal(got, tagged) {
			t.Errorf("%s: required = %v, %v always encodes %v", wt.file, got, typ, tagged)
		}
	}
}

// Every enum of the schemas equals the constants declared in this package.
func TestSchemaEnums(t *testing.T) {
	t.Parallel()
	ofType := func(name string) func(_, typ string) bool {
		return func(_, typ string) bool { return typ == name }
	}
	eventTypes := func(name, typ string) bool { return typ == "" && strings.HasPrefix(name, "Event") }
	want := map[[2]string][]string{
		{"result.schema.json", "status"}:           constants(t, ofType("Status")),
		{"confirmation.schema.json", "status"}:     constants(t, ofType("ConfirmationStatus")),
		{"confirmation.schema.json", "event_type"}: constants(t, eventTypes),
		{"session.schema.json", "state"}:           constants(t, ofType("SessionState")),
		{"session_event.schema.json", "kind"}:      constants(t, ofType("SessionEventKind")),
		{"session.schema.json", "auth_mode"}:       {"1", "2"}, // Session.AuthMode: 1 static, 2 rotating
	}
	seen := map[[2]string]bool{}
	for _, wt := range wireTypes() {
		s := loadSchema(t, wt.file)
		for name, p := range s.Properties {
			key := [2]string{wt.file, name}
			if w := want[key]; !slices.Equal(p.enum(), w) {
				t.Errorf("%s: %s enum = %v, Go constants %v", wt.file, name, p.enum(), w)
			}
			seen[key] = true
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("%s has no property %s", key[0], key[1])
		}
	}
}

// Fields with the same meaning have the same rules in every schema: those
// DisconnectCommand.Validate applies, and the date-time format.
func TestSchemaBounds(t *testing.T) {
	t.Parallel()
	ptr := func(v int64) *int64 { return &v }
	idPattern := fmt.Sprintf("^[A-Za-z0-9_-]{1,%d}$", MaxCommandIDLen)
	numberPattern := fmt.Sprintf("^[0-9]{1,%d}$", MaxNumberDigits)
	text := property{Type: "string", Pattern: "^[!-~]*$", MaxLength: ptr(MaxTextLen)}
	date := property{Type: "string", Format: "date-time"}
	callID := property{Type: "string", Pattern: fmt.Sprintf("^[!-~]{1,%d}$", MaxCallIDLen), MinLength: ptr(1), MaxLength: ptr(MaxCallIDLen)}
	common := map[string]property{
		"command_id":     {Type: "string", Pattern: idPattern, MinLength: ptr(1), MaxLength: ptr(MaxCommandIDLen)},
		"agent_id":       {Type: "integer", Minimum: ptr(AgentIDMin), Maximum: ptr(AgentIDMax)},
		"number":         {Type: "string", Pattern: numberPattern, MinLength: ptr(1), MaxLength: ptr(MaxNumberDigits)},
		"correlation_id": text,
		"requested_by":   text,
	}
	for _, wt := range wireTypes() {
		s := loadSchema(t, wt.file)
		want := maps.Clone(common)
		switch wt.file {
		case "disconnect_command.schema.json":
			want["ttl_ms"] = property{Type: "integer", Minimum: ptr(1), Maximum: ptr(MaxTTL.Milliseconds())}
			want["guid"] = text
			want["call_id"] = callID
		case "result.schema.json":
			want["call_id"] = callID
		case "agent_event.schema.json":
			want["number"] = property{Type: "string"} // as the gateway wrote it
		}
		checked := 0
		for name, got := range s.Properties {
			w, ok := want[name]
			if !ok && got.Format != "" {
				w, ok = date, true
			}
			if !ok {
				continue
			}
			checked++
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s: %s = %s, want %s", wt.file, name, show(got), show(w))
			}
		}
		if checked == 0 {
			t.Errorf("%s: no field checked", wt.file)
		}
	}
}

// The schema's patterns (RE2-compatible here) agree with the Go checks.
func TestSchemaPatternsMatchGo(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "disconnect_command.schema.json")
	tests := []struct {
		field  string
		valid  func(string) bool
		inputs []string
	}{
		{"command_id", ValidCommandID, []string{"a", "A-z_09", strings.Repeat("x", 64), strings.Repeat("x", 65), "", "a b", "a.b", "x\n", "é", "a*", "a>"}},
		{"number", ValidNumber, []string{"0", "13800001234", strings.Repeat("9", 24), strings.Repeat("9", 25), "", "+1", "12a", "1 2", "12/../34", "１"}},
		{"call_id", ValidCallID, []string{"1767366245-15", "a", "!~", strings.Repeat("~", 64), strings.Repeat("~", 65), "", "a b", "a\r\nb", "\x7f", "é", "\t"}},
		{"correlation_id", validText, []string{"", "a", "!~", strings.Repeat("~", 128), strings.Repeat("~", 129), "a b", "a\r\nb", "\x7f", "é", "\t"}},
	}
	for _, tt := range tests {
		p := s.Properties[tt.field]
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			t.Fatalf("%s: pattern %q: %v", tt.field, p.Pattern, err)
		}
		for _, in := range tt.inputs {
			schemaOK := re.MatchString(in) && (p.MaxLength == nil || int64(len([]rune(in))) <= *p.MaxLength)
			if goOK := tt.valid(in); schemaOK != goOK {
				t.Errorf("%s %q: schema says %v, Go says %v", tt.field, in, schemaOK, goOK)
			}
		}
	}
}

// What Go encodes is valid by the schema, and the schema refuses values Go
// would not encode.
func TestSchemaValidatesGo(t *testing.T) {
	t.Parallel()
	bad := map[string][]any{
		"agent_id":       {100.0, 60000.0, 101.5, "101", nil},
		"command_id":     {"", "a b", strings.Repeat("x", 65)},
		"number":         {"", "+1", strings.Repeat("9", 25), 13800001234.0},
		"correlation_id": {"a b", strings.Repeat("x", 129)},
		"status":         {"maybe", ""},
		"event_type":     {nil, 1.0},
		"kind":           {"maybe", ""},
		"state":          {"maybe", ""},
		"auth_mode":      {0.0, 3.0, "2"},
		"content":        {1.0, true, []any{}},
		"guid":           {nil},
	}
	// call_id is the gateway's text in the agent events and confirmations,
	// a bounded token where a requester sets it.
	callIDBad := []any{"", "a b", strings.Repeat("x", 65), nil, 1.0}
	for _, wt := range wireTypes() {
		s := loadSchema(t, wt.file)
		obj := encodedObject(t, wt.full)
		if errs := validate(s.raw, obj, wt.file); len(errs) > 0 {
			t.Errorf("the full %T is invalid: %v", wt.full, errs)
		}
		for _, name := range s.Required {
			o := maps.Clone(obj)
			delete(o, name)
			if validate(s.raw, o, wt.file) == nil {
				t.Errorf("%s: valid without %s", wt.file, name)
			}
		}
		for name, p := range s.Properties {
			values := bad[name]
			if p.Format == "date-time" {
				values = []any{"2026-01-02", "2026-01-02 15:04:05Z", "", 1.0}
			}
			if wt.file == "agent_event.schema.json" && name == "number" {
				values = []any{nil, 1.0} // any text
			}
			if name == "call_id" {
				values = callIDBad
				if wt.file == "agent_event.schema.json" || wt.file == "confirmation.schema.json" {
					values = []any{nil, 1.0} // any text
				}
			}
			for _, x := range values {
				o := maps.Clone(obj)
				o[name] = x
				if validate(s.raw, o, wt.file) == nil {
					t.Errorf("%s: %s = %#v is valid", wt.file, name, x)
				}
			}
		}
	}
}

// An AgentEvent's content is null, a string or an object, as received.
func TestAgentEventContent(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "agent_event.schema.json")
	for _, content := range []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(`"1767366245-101"`), json.RawMessage(`{"a":[1]}`)} {
		ev := fullAgentEvent()
		ev.Content = content
		if errs := validate(s.raw, encodedObject(t, ev), "AgentEvent"); len(errs) > 0 {
			t.Errorf("content %s: %v", content, errs)
		}
	}
}

// The schemas' examples are valid, decode into the Go types without unknown
// fields and encode back to themselves.
func TestSchemaExamplesMatchGo(t *testing.T) {
	t.Parallel()
	for _, wt := range wireTypes() {
		s := loadSchema(t, wt.file)
		if len(s.Examples) == 0 {
			t.Errorf("%s has no examples", wt.file)
		}
		decode := wt.decode
		if decode == nil {
			decode = func(b []byte) (any, error) {
				v := reflect.New(reflect.TypeOf(wt.full))
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				err := dec.Decode(v.Interface())
				return v.Elem().Interface(), err
			}
		}
		for i, ex := range s.Examples {
			var want any
			if err := json.Unmarshal(ex, &want); err != nil {
				t.Fatal(err)
			}
			if errs := validate(s.raw, want, fmt.Sprintf("%s example %d", wt.file, i)); len(errs) > 0 {
				t.Errorf("%v", errs)
			}
			v, err := decode(ex)
			if err != nil {
				t.Errorf("%s example %d: %v", wt.file, i, err)
				continue
			}
			if got := encodedObject(t, v); !reflect.DeepEqual(got, want) {
				t.Errorf("%s example %d encodes back as\n%v\nwant\n%v", wt.file, i, got, want)
			}
		}
	}
}

// The call state schema's nested objects have Call's and EndedCall's
// fields, with the phases of the CallPhase constants, and the full value
// is valid item by item.
func TestCallStateSchemaItems(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "call_state.schema.json")
	full := fullCallState()
	for name, v := range map[string]any{"calls": full.Calls[0], "ended": full.Ended[0]} {
		items, _ := s.raw["properties"].(map[string]any)[name].(map[string]any)["items"].(map[string]any)
		if items == nil {
			t.Fatalf("%s has no items", name)
		}
		props, _ := items["properties"].(map[string]any)
		if got, want := slices.Sorted(maps.Keys(props)), slices.Sorted(maps.Keys(encodedFields(t, v))); !slices.Equal(got, want) {
			t.Errorf("%s items: properties %v, Go encodes %v", name, got, want)
		}
		if got, want := items["required"], requiredByTags(reflect.TypeOf(v)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s items: required %v, Go always encodes %v", name, got, want)
		}
		if errs := validate(items, encodedObject(t, v), name+"[0]"); len(errs) > 0 {
			t.Errorf("%v", errs)
		}
	}
	phase, _ := s.raw["properties"].(map[string]any)["calls"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)["phase"].(map[string]any)
	var enum []string
	for _, e := range phase["enum"].([]any) {
		enum = append(enum, e.(string))
	}
	if want := constants(t, func(_, typ string) bool { return typ == "CallPhase" }); !slices.Equal(slices.Sorted(slices.Values(enum)), want) {
		t.Errorf("phase enum %v, Go constants %v", enum, want)
	}
	if got := s.raw["properties"].(map[string]any)["ended"].(map[string]any)["maxItems"]; got != float64(MaxEndedCalls) {
		t.Errorf("ended maxItems %v, want MaxEndedCalls %d", got, MaxEndedCalls)
	}
}
