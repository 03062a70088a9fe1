package events

// The single rules of the contract: deadlines, numbers, command IDs,
// masking, subjects and message IDs.

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The decoder reads fields by the names in wire's JSON tags, which
// MarshalJSON writes: the two lists must not drift apart.
func TestWireFieldsMatchTags(t *testing.T) {
	t.Parallel()
	var w wire
	fields := w.fields()
	typ := reflect.TypeOf(w)
	if len(fields) != typ.NumField() {
		t.Fatalf("%d decoded fields, wire has %d", len(fields), typ.NumField())
	}
	for i, f := range fields {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if f.name != name {
			t.Errorf("field %d decoded as %q, tagged %q", i, f.name, name)
		}
		if got := reflect.ValueOf(f.dst).Pointer(); got != reflect.ValueOf(&w).Elem().Field(i).Addr().Pointer() {
			t.Errorf("field %q decodes into the wrong struct field", f.name)
		}
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	stored := t0.Add(time.Minute)
	const defTTL = 30 * time.Second
	tests := []struct {
		name string
		cmd  DisconnectCommand
		want time.Time
	}{
		{"expires_at", DisconnectCommand{ExpiresAt: t0.Add(5 * time.Second)}, t0.Add(5 * time.Second)},
		{"expires_at beats issued_at", DisconnectCommand{IssuedAt: t0, ExpiresAt: t0.Add(5 * time.Second)}, t0.Add(5 * time.Second)},
		{"issued_at + ttl", DisconnectCommand{IssuedAt: t0, TTL: 2 * time.Second}, t0.Add(2 * time.Second)},
		{"issued_at + default", DisconnectCommand{IssuedAt: t0}, t0.Add(defTTL)},
		{"stored + ttl", DisconnectCommand{TTL: 2 * time.Second}, stored.Add(2 * time.Second)},
		{"stored + default", DisconnectCommand{}, stored.Add(defTTL)},
		{"capped at year 9999", DisconnectCommand{IssuedAt: time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC), TTL: MaxTTL}, maxTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cmd.Deadline(stored, defTTL); !got.Equal(tt.want) {
				t.Errorf("Deadline = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    string
		want bool
	}{
		{"0", true}, {"13800001234", true}, {strings.Repeat("9", MaxNumberDigits), true},
		{"", false}, {strings.Repeat("9", MaxNumberDigits+1), false}, {"+86138", false},
		{"12a", false}, {"12/../34", false}, {"1 2", false}, {"１２", false}, {"12\x00", false},
	}
	for _, tt := range tests {
		if got := ValidNumber(tt.n); got != tt.want {
			t.Errorf("ValidNumber(%q) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestValidAgentID(t *testing.T) {
	t.Parallel()
	for id, want := range map[int]bool{AgentIDMin: true, AgentIDMax: true, 5000: true, 0: false, AgentIDMin - 1: false, AgentIDMax + 1: false, -101: false} {
		if got := ValidAgentID(id); got != want {
			t.Errorf("ValidAgentID(%d) = %v, want %v", id, got, want)
		}
	}
}

func TestValidCommandID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"A-z_0-9", true}, {strings.Repeat("x", MaxCommandIDLen), true},
		{"", false}, {strings.Repeat("x", MaxCommandIDLen+1), false}, {"a.b", false}, {"a b", false}, {"a*", false}, {"a>", false},
	}
	for _, tt := range tests {
		if got := ValidCommandID(tt.id); got != tt.want {
			t.Errorf("ValidCommandID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"13800001234", "*******1234"}, {"12345", "*2345"}, {"1234", "****"}, {"123", "***"}, {"1", "*"}, {"", ""},
	}
	for _, tt := range tests {
		if got := MaskNumber(tt.in); got != tt.want {
			t.Errorf("MaskNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResultSubjectAndMsgID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    Status
		want string
	}{
		{StatusAccepted, "callcontrol.results.accepted"},
		{StatusRejected, "callcontrol.results.rejected"},
		{StatusFailed, "callcontrol.results.failed"},
		{StatusExpired, "callcontrol.results.expired"},
	}
	for _, tt := range tests {
		if got := ResultSubject(tt.s); got != tt.want {
			t.Errorf("ResultSubject(%q) = %q, want %q", tt.s, got, tt.want)
		}
	}
	if got := ResultMsgID("c-1"); got != "result-c-1" {
		t.Errorf("ResultMsgID = %q, want %q", got, "result-c-1")
	}
}
