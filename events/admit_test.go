package events

import (
	"testing"
	"time"
)

// CheckTimes refuses an issued_at later than the store time by more than
// the skew, and an expires_at further than MaxTTL (+ skew) after it.
func TestCheckTimes(t *testing.T) {
	t.Parallel()
	stored := t0
	const skew = 5 * time.Second
	tests := []struct {
		name  string
		cmd   DisconnectCommand
		field string // "" when accepted
	}{
		{"no times", DisconnectCommand{}, ""},
		{"issued in the past", DisconnectCommand{IssuedAt: stored.Add(-time.Hour), TTL: time.Minute}, ""},
		{"issued within the skew", DisconnectCommand{IssuedAt: stored.Add(skew), TTL: MaxTTL}, ""},
		{"issued 10 minutes ahead", DisconnectCommand{IssuedAt: stored.Add(10 * time.Minute), TTL: 30 * time.Second}, "issued_at"},
		{"issued just past the skew", DisconnectCommand{IssuedAt: stored.Add(skew + time.Millisecond)}, "issued_at"},
		{"expires at the limit", DisconnectCommand{ExpiresAt: stored.Add(MaxTTL + skew)}, ""},
		{"expires past the limit", DisconnectCommand{ExpiresAt: stored.Add(MaxTTL + skew + time.Millisecond)}, "expires_at"},
		{"expires in a year", DisconnectCommand{IssuedAt: stored, ExpiresAt: stored.AddDate(1, 0, 0)}, "expires_at"},
		{"expired already", DisconnectCommand{ExpiresAt: stored.Add(-time.Minute)}, ""},
	}
	for _, tt := range tests {
		err := tt.cmd.CheckTimes(stored, skew)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if ve := validationError(t, err); ve.Field != tt.field {
			t.Errorf("%s: field %q (%v), want %q", tt.name, ve.Field, ve, tt.field)
		}
	}
}

// CheckMsgID accepts the command_id, the Nats-Msg-Id of a dlq replay
// (only with Callcontrol-Replay-Of) and no header at all.
func TestCheckMsgID(t *testing.T) {
	t.Parallel()
	c := DisconnectCommand{CommandID: "crm-1"}
	tests := []struct {
		msgID, replayOf string
		ok              bool
	}{
		{"crm-1", "", true},
		{"", "", true},
		{"crm-2", "", false},
		{"CRM-1", "", false},
		{"crm-1 ", "", false},
		{"replay-crm-1-7", "12", true},
		{"replay-crm-1-dlq12", "12", true},
		{"replay-crm-1-7", "", false},
		{"replay-crm-1-7", "x", false},
		{"replay-crm-2-7", "12", false},
		{"replay-crm-1-", "12", false},
		{"replay-crm-1-7x", "12", false},
		{"crm-1", "12", true},
	}
	for _, tt := range tests {
		err := c.CheckMsgID(tt.msgID, tt.replayOf)
		if tt.ok {
			if err != nil {
				t.Errorf("%q (replay of %q): %v", tt.msgID, tt.replayOf, err)
			}
			continue
		}
		if ve := validationError(t, err); ve.Error() != "Nats-Msg-Id: must equal command_id" {
			t.Errorf("%q (replay of %q): %v", tt.msgID, tt.replayOf, ve)
		}
	}
}
