package events_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
)

// A requester publishes a command on events.SubjectDisconnect with its
// command_id as the Nats-Msg-Id; a worker answers with one Result.
func Example() {
	issued := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	cmd := events.DisconnectCommand{
		CommandID:     "crm-20260102-0001",
		AgentID:       101,
		Number:        "13800001234",
		IssuedAt:      issued,
		TTL:           10 * time.Second,
		CorrelationID: "case-42",
		RequestedBy:   "crm",
	}
	data, _ := json.MarshalIndent(cmd, "", "  ")
	fmt.Println(events.SubjectDisconnect, events.HeaderMsgID+":", cmd.CommandID)
	fmt.Println(string(data))

	res := events.Result{
		CommandID:     cmd.CommandID,
		AgentID:       cmd.AgentID,
		Number:        cmd.Number,
		Status:        events.StatusAccepted,
		RetCode:       "0",
		Attempts:      1,
		CorrelationID: cmd.CorrelationID,
		RequestedBy:   cmd.RequestedBy,
		IssuedAt:      issued,
		ExpiresAt:     cmd.Deadline(issued, 30*time.Second),
		CompletedAt:   issued.Add(420 * time.Millisecond),
		GatewayMillis: 87,
	}
	data, _ = json.MarshalIndent(res, "", "  ")
	fmt.Println(events.ResultSubject(res.Status), events.HeaderMsgID+":", events.ResultMsgID(res.CommandID))
	fmt.Println(string(data))
	// Output:
	// callcontrol.disconnect Nats-Msg-Id: crm-20260102-0001
	// {
	//   "command_id": "crm-20260102-0001",
	//   "agent_id": 101,
	//   "number": "13800001234",
	//   "issued_at": "2026-01-02T15:04:05Z",
	//   "ttl_ms": 10000,
	//   "correlation_id": "case-42",
	//   "requested_by": "crm"
	// }
	// callcontrol.results.accepted Nats-Msg-Id: result-crm-20260102-0001
	// {
	//   "command_id": "crm-20260102-0001",
	//   "agent_id": 101,
	//   "number": "13800001234",
	//   "status": "accepted",
	//   "retcode": "0",
	//   "attempts": 1,
	//   "correlation_id": "case-42",
	//   "requested_by": "crm",
	//   "issued_at": "2026-01-02T15:04:05Z",
	//   "expires_at": "2026-01-02T15:04:15Z",
	//   "completed_at": "2026-01-02T15:04:05.42Z",
	//   "gateway_ms": 87
	// }
}

// DecodeDisconnect names the field and the rule a bad command breaks.
func ExampleDecodeDisconnect() {
	_, err := events.DecodeDisconnect([]byte(`{"command_id":"c-1","agent_id":100,"number":"13800001234"}`))
	fmt.Println(err)
	_, err = events.DecodeDisconnect([]byte(`{"command_id":"c-1","agent_id":101,"number":"12/../34"}`))
	fmt.Println(err)
	// Output:
	// agent_id: must be between 101 and 59999, got 100
	// number: must be 1-24 digits (0-9) only
}
