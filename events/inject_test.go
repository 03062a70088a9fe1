package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// tricks are values that try to break out of a header line, a URL path
// segment or a subject token, or to look like something they are not.
var tricks = map[string]string{
	"CR LF":                "a\r\nNats-Msg-Id: forged",
	"LF":                   "a\nb",
	"NUL":                  "a\x00b",
	"slash":                "a/b",
	"dot dot":              "../a",
	"query":                "a?b=1",
	"fragment":             "a#b",
	"percent":              "a%2Fb",
	"space":                "a b",
	"dot":                  "a.b",
	"wildcards":            "a.*.>",
	"NEL":                  "a\u0085b",
	"line separator":       "a\u2028b",
	"bidi override":        "a\u202eb",
	"zero width space":     "a\u200bb",
	"fullwidth digits":     "\uff11\uff12\uff13",
	"arabic-indic digits":  "\u0661\u0662\u0663",
	"hyphen look-alike":    "a\u2010b",
	"invalid UTF-8":        "a\xffb",
	"too long":             strings.Repeat("a", 300),
	"DEL":                  "a\x7fb",
	"tab":                  "a\tb",
	"non-breaking space":   "a\u00a0b",
	"combining character":  "a\u0301",
	"escape sequence":      "a\x1b[31mb",
	"trailing line break":  "a\r\n",
	"leading line break":   "\r\na",
	"encoded line break":   "a%0d%0ab",
	"backslash":            `a\b`,
	"double quote":         `a"b`,
	"header folding":       "a\r\n b",
	"unicode digit number": "١٢٣٤٥",
}

// headerSafe reports whether v can be written as one NATS or HTTP header
// value without starting another line or hiding text: visible ASCII only.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}

// Every field that reaches a header, a URL path, a subject or a KV key is
// either refused by the validator, with an error that names the field and
// does not repeat the value, or safe there: command_id (Nats-Msg-Id,
// headers, KV keys) and number (the URL path) only as tokens and digits;
// correlation_id and requested_by (headers) only as visible ASCII, where
// '/', '?', '#' and '..' are harmless; the GUID (the Guid header) likewise.
func TestValidatorRefusesInjection(t *testing.T) {
	t.Parallel()
	base := map[string]any{"command_id": "c-1", "agent_id": 101, "number": "5550100"}
	fields := map[string]func(string) bool{
		"command_id":     ValidCommandID,
		"number":         ValidNumber,
		"correlation_id": headerSafe,
		"requested_by":   headerSafe,
		"guid":           headerSafe,
	}
	for field, safe := range fields {
		for name, v := range tricks {
			cmd := map[string]any{}
			for k, x := range base {
				cmd[k] = x
			}
			cmd[field] = v
			data, _ := json.Marshal(cmd)
			c, err := DecodeDisconnect(data)
			if err == nil {
				if !safe(v) || (field == "command_id" || field == "number") && strings.ContainsAny(v, "/.?#%") {
					t.Errorf("%s %s: %q accepted", field, name, v)
				}
				continue
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != field {
				t.Errorf("%s %s: error %v does not name the field", field, name, err)
			}
			if len(v) >= 3 && strings.Contains(err.Error(), v) {
				t.Errorf("%s %s: error %q repeats the value", field, name, err)
			}
			if got := salvaged(c, field); got != "" {
				t.Errorf("%s %s: salvaged %q", field, name, got)
			}
		}
	}
	// agent_id is an integer: a string with a line break is a type error.
	_, err := DecodeDisconnect([]byte(`{"command_id":"c-1","agent_id":"101\r\nX: 1","number":"5550100"}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "agent_id" || strings.Contains(err.Error(), "X: 1") {
		t.Errorf("agent_id with a line break: %v", err)
	}
}

func salvaged(c DisconnectCommand, field string) string {
	switch field {
	case "command_id":
		return c.CommandID
	case "number":
		return c.Number
	case "correlation_id":
		return c.CorrelationID
	case "requested_by":
		return c.RequestedBy
	}
	return c.GUID
}

// Subjects built from gateway or command values are single tokens.
func TestSubjectsCannotBeInjected(t *testing.T) {
	t.Parallel()
	for name, v := range tricks {
		s := AgentEventSubject(101, v)
		tok := strings.TrimPrefix(s, SubjectAgentEvents+".101.")
		if tok == s || tok == "" || strings.ContainsAny(tok, ". *>\r\n\x00") || !headerSafe(tok) {
			t.Errorf("%s: AgentEventSubject(101, %q) = %q", name, v, s)
		}
	}
}
