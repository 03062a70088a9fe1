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

// The poller republishes every gateway event; the release of the party of
// an accepted disconnect also yields the command's one Confirmation.
func ExampleConfirmation() {
	issued := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	released := issued.Add(430 * time.Millisecond)
	ev := events.AgentEvent{
		AgentID:     101,
		Type:        events.EventCustomerRelease,
		CallID:      "1767366245-101",
		Number:      "13800001234",
		Content:     json.RawMessage(`{"callid":"1767366245-101","number":"13800001234"}`),
		GeneratedAt: released,
		ReceivedAt:  released.Add(20 * time.Millisecond),
	}
	data, _ := json.MarshalIndent(ev, "", "  ")
	// The poller derives the event's Nats-Msg-Id from the event itself.
	fmt.Println(events.AgentEventSubject(ev.AgentID, ev.Type), events.HeaderMsgID+": ev-<32 hex digits of SHA-256>")
	fmt.Println(string(data))

	conf := events.Confirmation{
		CommandID:     "crm-20260102-0001",
		CorrelationID: "case-42",
		AgentID:       ev.AgentID,
		Number:        ev.Number,
		Status:        events.ConfirmationConfirmed,
		EventType:     ev.Type,
		CallID:        ev.CallID,
		IssuedAt:      issued,
		AcceptedAt:    issued.Add(420 * time.Millisecond),
		ReleasedAt:    ev.GeneratedAt,
		ConfirmedAt:   ev.ReceivedAt,
		LatencyMillis: ev.GeneratedAt.Sub(issued).Milliseconds(),
	}
	data, _ = json.MarshalIndent(conf, "", "  ")
	fmt.Println(events.ConfirmationSubject(conf.Status), events.HeaderMsgID+":", events.ConfirmationMsgID(conf.CommandID))
	fmt.Println(string(data))
	// Had no release arrived in time, the confirmation would have been
	// unconfirmed, under the same Nats-Msg-Id: a command gets only one.
	fmt.Println(events.ConfirmationSubject(events.ConfirmationUnconfirmed), events.HeaderMsgID+":", events.ConfirmationMsgID(conf.CommandID))
	// Output:
	// callcontrol.events.101.AgentEvent_Customer_Release Nats-Msg-Id: ev-<32 hex digits of SHA-256>
	// {
	//   "agent_id": 101,
	//   "event_type": "AgentEvent_Customer_Release",
	//   "call_id": "1767366245-101",
	//   "number": "13800001234",
	//   "content": {
	//     "callid": "1767366245-101",
	//     "number": "13800001234"
	//   },
	//   "generated_at": "2026-01-02T15:04:05.43Z",
	//   "received_at": "2026-01-02T15:04:05.45Z"
	// }
	// callcontrol.confirmations.confirmed Nats-Msg-Id: confirmation-crm-20260102-0001
	// {
	//   "command_id": "crm-20260102-0001",
	//   "correlation_id": "case-42",
	//   "agent_id": 101,
	//   "number": "13800001234",
	//   "status": "confirmed",
	//   "event_type": "AgentEvent_Customer_Release",
	//   "call_id": "1767366245-101",
	//   "issued_at": "2026-01-02T15:04:05Z",
	//   "accepted_at": "2026-01-02T15:04:05.42Z",
	//   "released_at": "2026-01-02T15:04:05.43Z",
	//   "confirmed_at": "2026-01-02T15:04:05.45Z",
	//   "latency_ms": 430
	// }
	// callcontrol.confirmations.unconfirmed Nats-Msg-Id: confirmation-crm-20260102-0001
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
