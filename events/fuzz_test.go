package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/jsondup"
)

// FuzzDecodeDisconnect checks that DecodeDisconnect never panics, that what
// it accepts is valid and survives a round trip, that a Result built from it
// can be encoded, and that what it rejects is explained by a
// *ValidationError and salvages no invalid value.
func FuzzDecodeDisconnect(f *testing.F) {
	for _, seed := range []string{
		`{"command_id":"c-1","agent_id":101,"number":"13800001234"}`,
		`{"command_id":"crm_1","agent_id":59999,"number":"008613800001234","issued_at":"2026-01-02T15:04:05.123456789+08:00","ttl_ms":1500,"correlation_id":"case-42","requested_by":"crm@sales","guid":"0f9e.AgentGateway1"}`,
		`{"command_id":"ivr-7","agent_id":4242,"number":"1","issued_at":"2026-01-02T15:04:05Z","expires_at":"2026-01-02T15:04:35Z"}`,
		`{"command_id":"c","agent_id":101,"number":"1","extra":{"a":[1,2,null]},"AGENT_ID":"x"}`,
		`{"command_id":"a b","agent_id":100,"number":"12/../34"}`,
		`{"command_id":"x\n","agent_id":"101","number":13800001234}`,
		`{"command_id":"c","agent_id":101.5,"number":"+123","ttl_ms":-1}`,
		`{"command_id":"c","agent_id":101,"number":"1","expires_at":"2026-01-02T15:04:05Z","ttl_ms":5000}`,
		`{"command_id":"c","agent_id":101,"number":"1","issued_at":"9999-12-31T23:59:59-01:00"}`,
		`{"command_id":"c","agent_id":101,"number":"1","issued_at":"9999-12-31T23:00:00Z","ttl_ms":3600000}`,
		`{"command_id":"c","agent_id":101,"number":"1","correlation_id":"a\r\nX: y"}`,
		`{"command_id":"c","agent_id":null,"number":"1","issued_at":""}`,
		`{"command_id":"c-1","agent_id":102,"number":"5550102","number":"5550103"}`,
		`{"command_id":"c-1","agent_id":102,"number":"5550102","n\u0075mber":"5550103"}`,
		`{"command_id":"c-1","agent_id":102,"number":"5550102","x":{"a":"}","a":"{"},"y":"\",\""}`,
		`{"command_id":"c-1","agent_id":102,"number":"5550102","Number":"5550103","x":[{"k":1},{"k":2}]}`,
		`{"command_id":"c-1","agent_id":101,"number":"13800001234","call_id":"1456403549-15"}`,
		`{"command_id":"c-1","agent_id":101,"number":"1","call_id":""}`,
		`{"command_id":"c-1","agent_id":101,"number":"1","call_id":"1456403549 15","Call_Id":7}`,
		`{"command_id":"c","agent_id":101`, `[]`, `null`, `"str"`, ``, `{}`, `{"a":1,}`,
	} {
		f.Add([]byte(seed))
	}
	stored := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeDisconnect(data)
		if err != nil {
			checkRejected(t, c, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate: %v", data, err)
		}
		if err := jsondup.Check(data, jsondup.Options{}); err != nil {
			t.Fatalf("accepted %q, which repeats a key: %v", data, err)
		}
		if !ValidNumber(c.Number) {
			t.Fatalf("accepted %q with number %q", data, c.Number)
		}
		again, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", c, err)
		}
		c2, err := DecodeDisconnect(again)
		if err != nil {
			t.Fatalf("accepted %q but not its re-encoding %s: %v", data, again, err)
		}
		if !sameCommand(c, c2) {
			t.Fatalf("round trip of %q through %s:\n got %+v\nwant %+v", data, again, c2, c)
		}
		r := Result{
			CommandID: c.CommandID, AgentID: c.AgentID, Number: c.Number, Status: StatusAccepted,
			CorrelationID: c.CorrelationID, RequestedBy: c.RequestedBy, CallID: c.CallID,
			IssuedAt: c.IssuedAt, ExpiresAt: c.Deadline(stored, time.Hour), CompletedAt: stored,
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("result of %q cannot be encoded: %v", data, err)
		}
	})
}

// checkRejected checks the error and the salvaged command of a rejection.
func checkRejected(t *testing.T, c DisconnectCommand, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field == "" || ve.Rule == "" {
		t.Fatalf("error %#v is not a *ValidationError with Field and Rule", err)
	}
	if c.CommandID != "" && !ValidCommandID(c.CommandID) {
		t.Fatalf("salvaged invalid command_id %q", c.CommandID)
	}
	if !validText(c.CorrelationID) || !validText(c.RequestedBy) {
		t.Fatalf("salvaged invalid text %q %q", c.CorrelationID, c.RequestedBy)
	}
	if c.CallID != "" && !ValidCallID(c.CallID) {
		t.Fatalf("salvaged invalid call_id %q", c.CallID)
	}
	if c.Number != "" && !ValidNumber(c.Number) {
		t.Fatalf("salvaged invalid number %q", c.Number)
	}
	if c.GUID != "" {
		t.Fatal("salvaged the GUID")
	}
}
