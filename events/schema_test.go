package events

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"reflect"
	"regexp"
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
}

type property struct {
	Type      string   `json:"type,omitempty"`
	Format    string   `json:"format,omitempty"`
	Pattern   string   `json:"pattern,omitempty"`
	MinLength *int64   `json:"minLength,omitempty"`
	MaxLength *int64   `json:"maxLength,omitempty"`
	Minimum   *int64   `json:"minimum,omitempty"`
	Maximum   *int64   `json:"maximum,omitempty"`
	Enum      []string `json:"enum,omitempty"`
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
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Type != "object" || len(s.Properties) == 0 {
		t.Fatalf("%s: not a draft 2020-12 schema of an object with properties", name)
	}
	return s
}

// fullCommand has every field set, including the exclusive ExpiresAt and
// TTL, so that its encoding has every field name.
func fullCommand() DisconnectCommand {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	return DisconnectCommand{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute),
		TTL: time.Second, CorrelationID: "case-1", RequestedBy: "crm", GUID: "secret",
	}
}

func fullResult() Result {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	return Result{
		CommandID: "c-1", AgentID: 101, Number: "13800001234", Status: StatusFailed, Reason: "no_session",
		RetCode: "100-006", Attempts: 1, CorrelationID: "case-1", RequestedBy: "crm",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), CompletedAt: t0.Add(time.Second), GatewayMillis: 12,
	}
}

// encodedFields returns each field name of v's JSON encoding with the
// schema type of its value.
func encodedFields(t *testing.T, v any) map[string]string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for k, v := range obj {
		switch v.(type) {
		case string:
			types[k] = "string"
		case float64:
			types[k] = "integer" // every number of ours is an integer
		default:
			t.Fatalf("field %s has an unexpected JSON type %T", k, v)
		}
	}
	return types
}

func TestSchemaFieldsMatchGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		value any
	}{
		{"disconnect_command.schema.json", fullCommand()},
		{"result.schema.json", fullResult()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			s := loadSchema(t, tt.file)
			v := reflect.ValueOf(tt.value)
			for i := range v.NumField() {
				if v.Field(i).IsZero() {
					t.Fatalf("the full %T leaves %s zero: set it so that it is encoded", tt.value, v.Type().Field(i).Name)
				}
			}
			fields := encodedFields(t, tt.value)
			if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Fatalf("schema properties %v, Go encodes %v", got, want)
			}
			for name, typ := range fields {
				if s.Properties[name].Type != typ {
					t.Errorf("%s: schema type %q, Go encodes %q", name, s.Properties[name].Type, typ)
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
	if s.AdditionalProperties == nil || !*s.AdditionalProperties {
		t.Error("additionalProperties must be true: unknown fields are ignored")
	}
	if s.Not == nil || !slices.Equal(s.Not.Required, []string{"expires_at", "ttl_ms"}) {
		t.Error(`want "not": {"required": ["expires_at", "ttl_ms"]}: they exclude each other`)
	}
}

// The result schema's required fields are exactly those Go always encodes.
func TestResultSchemaRequired(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "result.schema.json")
	always := slices.Sorted(maps.Keys(encodedFields(t, Result{})))
	if got := slices.Sorted(slices.Values(s.Required)); !slices.Equal(got, always) {
		t.Errorf("required = %v, Go always encodes %v", got, always)
	}
}

// The status enum equals the Status constants declared in this package.
func TestResultSchemaStatusEnum(t *testing.T) {
	t.Parallel()
	s := loadSchema(t, "result.schema.json")
	got := slices.Sorted(slices.Values(s.Properties["status"].Enum))
	if want := statusConstants(t); !slices.Equal(got, want) {
		t.Errorf("status enum = %v, Status constants = %v", got, want)
	}
}

// statusConstants parses the package for every constant of type Status.
func statusConstants(t *testing.T) []string {
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
			typ, _ := spec.Type.(*ast.Ident)
			for _, v := range spec.Values {
				if call, ok := v.(*ast.CallExpr); ok && len(call.Args) == 1 { // Status("x")
					typ, _ = call.Fun.(*ast.Ident)
					v = call.Args[0]
				}
				lit, ok := v.(*ast.BasicLit)
				if typ == nil || typ.Name != "Status" || !ok {
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				values = append(values, s)
			}
			return true
		})
	}
	if len(values) == 0 {
		t.Fatal("no Status constants found")
	}
	return slices.Sorted(slices.Values(values))
}

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
		"issued_at":      date,
		"expires_at":     date,
		"correlation_id": text,
		"requested_by":   text,
	}
	command := maps.Clone(common)
	command["ttl_ms"] = property{Type: "integer", Minimum: ptr(1), Maximum: ptr(MaxTTL.Milliseconds())}
	command["guid"] = text
	for file, want := range map[string]map[string]property{"disconnect_command.schema.json": command, "result.schema.json": common} {
		s := loadSchema(t, file)
		for name, w := range want {
			if got := s.Properties[name]; !reflect.DeepEqual(got, w) {
				t.Errorf("%s: %s = %s, want %s", file, name, show(got), show(w))
			}
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

// asyncapi.yaml cannot be parsed without a YAML library; check at least that
// it names every subject, stream, consumer, bucket and header it documents,
// and the schema files.
func TestAsyncAPINamesContract(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if !strings.HasPrefix(doc, "asyncapi: 3.0.0\n") {
		t.Error("asyncapi.yaml does not start with asyncapi: 3.0.0")
	}
	for _, name := range []string{
		SubjectDisconnect, SubjectResults + ".{status}", SubjectDeadLetter,
		StreamCommands, StreamResults, StreamDeadLetter, ConsumerWorkers, ConsumerExhausted, BucketSessions,
		HeaderMsgID, HeaderCommandID, HeaderCorrelationID, HeaderStatus, HeaderReason, ResultMsgID(""),
		"./schema/disconnect_command.schema.json", "./schema/result.schema.json",
	} {
		if !strings.Contains(doc, name) {
			t.Errorf("asyncapi.yaml does not mention %q", name)
		}
	}
}
