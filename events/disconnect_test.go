package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// payload returns the JSON of a valid minimal command with some fields
// replaced: each pair is a name and a raw JSON value, "-" removes the field.
// Fields keep the order command_id, agent_id, number, then the added ones.
func payload(pairs ...string) []byte {
	names := []string{"command_id", "agent_id", "number"}
	values := map[string]string{"command_id": `"c-1"`, "agent_id": "101", "number": `"13800001234"`}
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, ok := values[pairs[i]]; !ok {
			names = append(names, pairs[i])
		}
		values[pairs[i]] = pairs[i+1]
	}
	var b strings.Builder
	b.WriteString("{")
	for _, n := range names {
		if values[n] == "-" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(`"` + n + `":` + values[n])
	}
	b.WriteString("}")
	return []byte(b.String())
}

// validationError checks that err is a *ValidationError with a readable
// rule and returns it.
func validationError(t *testing.T, err error) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %#v, want *ValidationError", err)
	}
	if ve.Field == "" || ve.Rule == "" {
		t.Errorf("error %#v: empty Field or Rule", ve)
	}
	for _, bad := range []string{"json:", "map[", "reflect", "int64", "\n", "\r"} {
		if strings.Contains(ve.Rule, bad) {
			t.Errorf("rule %q contains %q: not for requesters' eyes", ve.Rule, bad)
		}
	}
	if got, want := ve.Error(), ve.Field+": "+ve.Rule; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	return ve
}

func TestDecodeDisconnectRejects(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return `"` + strings.Repeat("a", n) + `"` }
	tests := []struct {
		name  string
		data  []byte
		field string
	}{
		{"command_id missing", payload("command_id", "-"), "command_id"},
		{"command_id empty", payload("command_id", `""`), "command_id"},
		{"command_id too long", payload("command_id", long(MaxCommandIDLen+1)), "command_id"},
		{"command_id with space", payload("command_id", `"a b"`), "command_id"},
		{"command_id with dot", payload("command_id", `"a.b"`), "command_id"},
		{"command_id with newline", payload("command_id", `"x\n"`), "command_id"},
		{"command_id non-ASCII", payload("command_id", `"caf\u00e9"`), "command_id"},
		{"command_id number", payload("command_id", "123"), "command_id"},
		{"command_id null", payload("command_id", "null"), "command_id"},
		{"command_id only in other case", payload("command_id", "-", "COMMAND_ID", `"c-1"`), "command_id"},

		{"agent_id missing", payload("agent_id", "-"), "agent_id"},
		{"agent_id zero", payload("agent_id", "0"), "agent_id"},
		{"agent_id 100", payload("agent_id", "100"), "agent_id"},
		{"agent_id 60000", payload("agent_id", "60000"), "agent_id"},
		{"agent_id negative", payload("agent_id", "-101"), "agent_id"},
		{"agent_id string", payload("agent_id", `"101"`), "agent_id"},
		{"agent_id float", payload("agent_id", "101.5"), "agent_id"},
		{"agent_id integral float", payload("agent_id", "101.0"), "agent_id"},
		{"agent_id exponent", payload("agent_id", "1.01e2"), "agent_id"},
		{"agent_id overflow", payload("agent_id", "99999999999999999999"), "agent_id"},
		{"agent_id bool", payload("agent_id", "true"), "agent_id"},
		{"agent_id null", payload("agent_id", "null"), "agent_id"},

		{"number missing", payload("number", "-"), "number"},
		{"number empty", payload("number", `""`), "number"},
		{"number path traversal", payload("number", `"12/../34"`), "number"},
		{"number letter", payload("number", `"12a"`), "number"},
		{"number 25 digits", payload("number", `"`+strings.Repeat("1", MaxNumberDigits+1)+`"`), "number"},
		{"number plus", payload("number", `"+123"`), "number"},
		{"number space", payload("number", `" 123"`), "number"},
		{"number percent-encoded", payload("number", `"12%2F34"`), "number"},
		{"number JSON number", payload("number", "13800001234"), "number"},

		{"ttl_ms negative", payload("ttl_ms", "-1"), "ttl_ms"},
		{"ttl_ms zero", payload("ttl_ms", "0"), "ttl_ms"},
		{"ttl_ms too large", payload("ttl_ms", "3600001"), "ttl_ms"},
		{"ttl_ms huge", payload("ttl_ms", "9223372036854775807"), "ttl_ms"},
		{"ttl_ms string", payload("ttl_ms", `"1000"`), "ttl_ms"},
		{"ttl_ms float", payload("ttl_ms", "1.5"), "ttl_ms"},

		{"issued_at garbage", payload("issued_at", `"yesterday"`), "issued_at"},
		{"issued_at empty", payload("issued_at", `""`), "issued_at"},
		{"issued_at number", payload("issued_at", "1767366245"), "issued_at"},
		{"issued_at zero instant", payload("issued_at", `"0001-01-01T00:00:00Z"`), "issued_at"},
		{"issued_at year 10000 in UTC", payload("issued_at", `"9999-12-31T23:59:59-01:00"`), "issued_at"},
		{"expires_at not RFC 3339", payload("expires_at", `"2026-01-02 15:04:05"`), "expires_at"},
		{"expires_at no zone", payload("expires_at", `"2026-01-02T15:04:05"`), "expires_at"},
		{"expires_at bad month", payload("expires_at", `"2026-13-02T15:04:05Z"`), "expires_at"},
		{"expires_at before issued_at", payload("issued_at", `"2026-01-02T15:04:05Z"`, "expires_at", `"2026-01-02T15:04:04Z"`), "expires_at"},
		{"expires_at equal to issued_at", payload("issued_at", `"2026-01-02T15:04:05Z"`, "expires_at", `"2026-01-02T16:04:05+01:00"`), "expires_at"},
		{"expires_at with ttl_ms", payload("expires_at", `"2026-01-02T15:04:05Z"`, "ttl_ms", "5000"), "expires_at"},

		{"correlation_id header injection", payload("correlation_id", `"a\r\nX-Injected: 1"`), "correlation_id"},
		{"correlation_id too long", payload("correlation_id", long(MaxTextLen+1)), "correlation_id"},
		{"correlation_id non-ASCII", payload("correlation_id", `"caf\u00e9"`), "correlation_id"},
		{"correlation_id object", payload("correlation_id", `{}`), "correlation_id"},
		{"requested_by space", payload("requested_by", `"crm user"`), "requested_by"},
		{"requested_by array", payload("requested_by", `["crm"]`), "requested_by"},
		{"guid space", payload("guid", `"abc def"`), "guid"},
		{"guid too long", payload("guid", long(MaxTextLen+1)), "guid"},

		{"call_id empty", payload("call_id", `""`), "call_id"},
		{"call_id too long", payload("call_id", long(MaxCallIDLen+1)), "call_id"},
		{"call_id with space", payload("call_id", `"1767366245 101"`), "call_id"},
		{"call_id header injection", payload("call_id", `"1-1\r\nX: y"`), "call_id"},
		{"call_id non-ASCII", payload("call_id", `"1767366245\u2013101"`), "call_id"},
		{"call_id number", payload("call_id", "1767366245"), "call_id"},
		{"call_id null", payload("call_id", "null"), "call_id"},

		{"number repeated", []byte(`{"command_id":"c-1","agent_id":102,"number":"5550102","number":"5550103"}`), "number"},
		{"agent_id repeated, same value", []byte(`{"command_id":"c-1","agent_id":102,"agent_id":102,"number":"5550102"}`), "agent_id"},
		{"command_id repeated, escaped", []byte(`{"command_id":"c-1","agent_id":102,"number":"5550102","command_\u0069d":"c-2"}`), "command_id"},
		{"unknown field repeated", []byte(`{"command_id":"c-1","agent_id":102,"number":"5550102","x":1,"x":2}`), "payload"},
		{"key repeated in a nested object", []byte(`{"command_id":"c-1","agent_id":102,"number":"5550102","x":[{"n":1,"n":2}]}`), "payload"},

		{"payload too large", payload("padding", long(MaxCommandSize)), "payload"},
		{"payload truncated", []byte(`{"command_id":"c-1","agent_id":10`), "payload"},
		{"payload array", []byte(`[]`), "payload"},
		{"payload null", []byte(`null`), "payload"},
		{"payload string", []byte(`"str"`), "payload"},
		{"payload number", []byte(`101`), "payload"},
		{"payload empty", []byte(``), "payload"},
		{"payload blank", []byte(" \n"), "payload"},
		{"payload trailing data", append(payload(), "{}"...), "payload"},
		{"payload trailing comma", []byte(`{"command_id":"c-1",}`), "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeDisconnect(tt.data)
			if err == nil {
				t.Fatalf("DecodeDisconnect(%s) succeeded, want an error on %s", tt.data, tt.field)
			}
			if ve := validationError(t, err); ve.Field != tt.field {
				t.Errorf("Field = %q (%v), want %q", ve.Field, ve, tt.field)
			}
		})
	}
}

// A repeated key is rejected whatever the values, with the rule "must
// appear once" for a field of the command; keys differing in case are not
// repeats (the decoder matches field names exactly), and a key that
// repeats in different objects is none either.
func TestDecodeDisconnectRepeatedKeys(t *testing.T) {
	t.Parallel()
	_, err := DecodeDisconnect([]byte(`{"agent_id":102,"number":"5550102","number":"5550103","command_id":"c-1"}`))
	if ve := validationError(t, err); ve.Field != "number" || ve.Rule != "must appear once" {
		t.Errorf("got %v, want number: must appear once", ve)
	}
	_, err = DecodeDisconnect([]byte(`{"command_id":"c-1","agent_id":102,"number":"5550102","x":{"5550103":1,"5550103":2}}`))
	if ve := validationError(t, err); ve.Field != "payload" || strings.Contains(ve.Rule, "5550103") {
		t.Errorf("got %v, want payload without the unknown key's text", ve)
	}
	for _, ok := range []string{
		`{"command_id":"c-1","agent_id":102,"number":"5550102","Number":"5550103","NUMBER":"1"}`,
		`{"command_id":"c-1","agent_id":102,"number":"5550102","a":{"number":1},"b":[{"k":1},{"k":2}]}`,
	} {
		if _, err := DecodeDisconnect([]byte(ok)); err != nil {
			t.Errorf("DecodeDisconnect(%s): %v", ok, err)
		}
	}
}

// A type error must not echo the value: it may be a phone number, and the
// rule ends up in logs and in the rejected result.
func TestDecodeDisconnectTypeErrorHidesValue(t *testing.T) {
	t.Parallel()
	_, err := DecodeDisconnect(payload("number", "13800001234"))
	if ve := validationError(t, err); strings.Contains(ve.Rule, "1234") {
		t.Errorf("rule %q quotes the number", ve.Rule)
	}
	_, err = DecodeDisconnect(payload("agent_id", `"101"`))
	if ve := validationError(t, err); ve.Field != "agent_id" || !strings.Contains(ve.Rule, "integer") {
		t.Errorf("got %v, want agent_id to be named and an integer asked for", ve)
	}
}

func TestDecodeDisconnectAccepts(t *testing.T) {
	t.Parallel()
	want := DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234"}
	tests := []struct {
		name string
		data []byte
		want DisconnectCommand
	}{
		{"minimal", payload(), want},
		{"agent_id bounds low", payload("agent_id", "101"), want},
		{"agent_id bounds high", payload("agent_id", "59999"), DisconnectCommand{CommandID: "c-1", AgentID: 59999, Number: "13800001234"}},
		{"24 digits", payload("number", `"`+strings.Repeat("9", 24)+`"`), DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: strings.Repeat("9", 24)}},
		{"escaped digits", payload("number", `"\u0031\u0033800001234"`), want},
		{"unknown fields", payload("priority", `"high"`, "extra", `{"a":[1,null,true]}`, "n", "null"), want},
		{"unknown field differing in case only", payload("AGENT_ID", `"not a number"`, "Number", "12"), want},
		{"whitespace", []byte(" {\n\t\"command_id\" : \"c-1\", \"agent_id\":101 ,\"number\":\"13800001234\"}\n"), want},
		{"ttl_ms max", payload("ttl_ms", "3600000"), DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234", TTL: MaxTTL}},
		{"texts at max length", payload("correlation_id", `"`+strings.Repeat("~", MaxTextLen)+`"`),
			DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234", CorrelationID: strings.Repeat("~", MaxTextLen)}},
		{"empty optional text", payload("requested_by", `""`), want},
		{"call_id", payload("call_id", `"1767366245-101"`), DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234", CallID: "1767366245-101"}},
		{"call_id at max length", payload("call_id", `"`+strings.Repeat("~", MaxCallIDLen)+`"`),
			DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234", CallID: strings.Repeat("~", MaxCallIDLen)}},
		{"call_id only in other case", payload("CALL_ID", `"1 2"`), want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeDisconnect(tt.data)
			if err != nil {
				t.Fatalf("DecodeDisconnect(%s): %v", tt.data, err)
			}
			if !sameCommand(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// sameCommand compares commands with times compared as instants, since a
// decoded time keeps the offset it was written with.
func sameCommand(a, b DisconnectCommand) bool {
	if !a.IssuedAt.Equal(b.IssuedAt) || !a.ExpiresAt.Equal(b.ExpiresAt) {
		return false
	}
	a.IssuedAt, a.ExpiresAt, b.IssuedAt, b.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func TestDisconnectRoundTrip(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("UTC+8", 8*60*60)
	tests := []struct {
		name string
		cmd  DisconnectCommand
	}{
		{"minimal", DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "1"}},
		{"full with ttl", DisconnectCommand{
			CommandID: "crm_2026-01-02_0001", AgentID: 59999, Number: "13800001234",
			IssuedAt: t0.Add(123456789 * time.Nanosecond), TTL: 1500 * time.Millisecond,
			CorrelationID: "case-42", RequestedBy: "crm@sales", GUID: "0f9e8d7c.AgentGateway1",
		}},
		{"full with expires_at", DisconnectCommand{
			CommandID: "ivr-7", AgentID: 4242, Number: "008613800001234",
			IssuedAt: t0.In(zone), ExpiresAt: t0.Add(30 * time.Second).In(zone),
			CorrelationID: "<&>", RequestedBy: "ivr", GUID: "g",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cmd.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			data, err := json.Marshal(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeDisconnect(data)
			if err != nil {
				t.Fatalf("DecodeDisconnect(%s): %v", data, err)
			}
			if !sameCommand(got, tt.cmd) {
				t.Errorf("round trip through %s:\n got %+v\nwant %+v", data, got, tt.cmd)
			}
		})
	}
}

func TestDisconnectMarshalJSON(t *testing.T) {
	t.Parallel()
	c := DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "1", IssuedAt: t0.In(time.FixedZone("", 3600)), TTL: 2 * time.Second}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"command_id":"c-1","agent_id":101,"number":"1","issued_at":"2026-01-02T15:04:05Z","ttl_ms":2000}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
}

// A rejected command keeps the fields that are valid on their own, so that
// the rejection can be correlated, and drops every invalid value: they would
// otherwise reach the result's headers.
func TestDecodeDisconnectSalvage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		data  []byte
		field string
		want  DisconnectCommand
	}{
		{"type error", payload("agent_id", `"101"`, "correlation_id", `"case-1"`, "guid", `"secret"`), "agent_id",
			DisconnectCommand{CommandID: "c-1", Number: "13800001234", CorrelationID: "case-1"}},
		{"type error before command_id", []byte(`{"agent_id":{},"command_id":"c-1"}`), "agent_id",
			DisconnectCommand{CommandID: "c-1"}},
		{"invalid field", payload("agent_id", "100", "ttl_ms", "1000", "issued_at", `"2026-01-02T15:04:05Z"`), "agent_id",
			DisconnectCommand{CommandID: "c-1", Number: "13800001234", TTL: time.Second, IssuedAt: t0}},
		{"invalid time", payload("expires_at", `"soon"`), "expires_at",
			DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "13800001234"}},
		{"invalid number", payload("number", `"12/../34"`), "number",
			DisconnectCommand{CommandID: "c-1", AgentID: 101}},
		{"invalid command_id and correlation_id", payload("command_id", `"x\r\nY: z"`, "correlation_id", `"a\r\nb"`), "command_id",
			DisconnectCommand{AgentID: 101, Number: "13800001234"}},
		{"malformed", []byte(`{"command_id":"c-1"`), "payload", DisconnectCommand{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeDisconnect(tt.data)
			if ve := validationError(t, err); ve.Field != tt.field {
				t.Errorf("Field = %q, want %q", ve.Field, tt.field)
			}
			if !sameCommand(got, tt.want) {
				t.Errorf("salvaged %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := DisconnectCommand{CommandID: "c-1", AgentID: 101, Number: "1"}
	tests := []struct {
		name  string
		edit  func(*DisconnectCommand)
		field string // "" when valid
	}{
		{"valid", func(*DisconnectCommand) {}, ""},
		{"negative ttl", func(c *DisconnectCommand) { c.TTL = -time.Second }, "ttl_ms"},
		{"ttl over max", func(c *DisconnectCommand) { c.TTL = MaxTTL + time.Millisecond }, "ttl_ms"},
		{"issued_at past year 9999", func(c *DisconnectCommand) { c.IssuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "issued_at"},
		{"expires_at before year 1", func(c *DisconnectCommand) { c.ExpiresAt = time.Time{}.Add(-time.Hour) }, "expires_at"},
		{"expires_at far but valid", func(c *DisconnectCommand) { c.ExpiresAt = maxTime }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if ve := validationError(t, err); ve.Field != tt.field {
				t.Errorf("Field = %q, want %q", ve.Field, tt.field)
			}
		})
	}
}
