package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
	}
}

var schemaT0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// fullCommand has every field set, including the exclusive ExpiresAt and
// TTL, so that its encoding has every field name.
func fullCommand() DisconnectCommand {
	return DisconnectCommand{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", IssuedAt: schemaT0, ExpiresAt: schemaT0.Add(time.Minute),
		TTL: time.Second, CorrelationID: "case-1", RequestedBy: "crm", GUID: "secret",
	}
}

func fullResult() Result {
	return Result{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", Status: StatusFailed, Reason: "no_session",
		RetCode: "100-006", Attempts: 1, CorrelationID: "case-1", RequestedBy: "crm",
		IssuedAt: schemaT0, ExpiresAt: schemaT0.Add(time.Minute), CompletedAt: schemaT0.Add(time.Second), GatewayMillis: 12,
	}
}

func fullAgentEvent() AgentEvent {
	return AgentEvent{
		AgentID: 59999, Type: EventCustomerRelease, CallID: "1767366245-101", Number: "13800001234",
		Content:     json.RawMessage(`{"callid":"1767366245-101","number":"13800001234"}`),
		GeneratedAt: schemaT0, ReceivedAt: schemaT0.Add(20 * time.Millisecond),
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
		CommandID: "c-1", AgentID: 101, Number: "13800001234", CorrelationID: "case-1",
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

// jsonType is the JSON Schema type of a value decoded by encoding/json.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
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

// Fields with the same meaning have the same rules in every schema: those
// DisconnectCommand.Validate applies, and the date-time format.
func TestSchemaBounds(t *testing.T) {
	t.Parallel()
	ptr := func(v int64) *int64 { return &v }
	idPattern := fmt.Sprintf("^[A-Za-z0-9_-]{1,%d}$", MaxCommandIDLen)
	numberPattern := fmt.Sprintf("^[0-9]{1,%d}$", MaxNumberDigits)
	text := property{Type: "string", Pattern: "^[!-~]*$", MaxLength: ptr(MaxTextLen)}
	date := property{Type: "string", Format: "date-time"}
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

func show(p property) string {
	b, _ := json.Marshal(p)
	return string(b)
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

// validate checks v against the subset of JSON Schema the schemas in
// schema/ use (type, enum, pattern, lengths, bounds, date-time, required,
// properties) and returns what it breaks.
func validate(s map[string]any, v any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if typ, ok := s["type"]; ok && !slices.Contains(property{Type: typ}.types(), jsonType(v)) {
		fail("%s, want type %v", jsonType(v), typ)
		return errs
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	num := func(key string) (float64, bool) { f, ok := s[key].(float64); return f, ok }
	switch v := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		n := float64(utf8.RuneCountInString(v))
		if m, ok := num("minLength"); ok && n < m {
			fail("%q is shorter than %v", v, m)
		}
		if m, ok := num("maxLength"); ok && n > m {
			fail("%q is longer than %v", v, m)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); s["format"] == "date-time" && err != nil {
			fail("%q is not a date-time", v)
		}
	case float64:
		if m, ok := num("minimum"); ok && v < m {
			fail("%v is less than %v", v, m)
		}
		if m, ok := num("maximum"); ok && v > m {
			fail("%v is more than %v", v, m)
		}
	case map[string]any:
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				fail("%s is required", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, x := range v {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(p, x, at+"."+k)...)
			}
		}
	}
	return errs
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
