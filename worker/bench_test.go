package worker

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/rs/zerolog"
)

// Per-command costs of the worker's hot path outside NATS and the network,
// with allocations (make bench). Throughput, latency and scale are measured
// end to end, against baselines of the same run, by `callcontrol bench`.

// BenchmarkDecodeValidate is decoding and validating one command.
func BenchmarkDecodeValidate(b *testing.B) {
	data, _ := json.Marshal(events.DisconnectCommand{CommandID: "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10", AgentID: 4711,
		Number: "13800001234", IssuedAt: time.Now(), TTL: 30 * time.Second, CorrelationID: "crm-case-4711"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.DecodeDisconnect(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultEncode is building and encoding the result event and the
// ledger record that carries it.
func BenchmarkResultEncode(b *testing.B) {
	w := &Worker{cfg: DefaultConfig()}
	j := &job{cmd: events.DisconnectCommand{CommandID: "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10", AgentID: 4711,
		Number: "13800001234", IssuedAt: time.Now()}, valid: true, attempts: 1, deadline: time.Now().Add(time.Minute)}
	b.ReportAllocs()
	for b.Loop() {
		res := w.result(j, events.StatusAccepted, "", "0")
		if _, err := json.Marshal(res); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(ledger.Record{State: ledger.StateDone, Result: res}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogOutcome is the one log line of a command, number masked.
func BenchmarkLogOutcome(b *testing.B) {
	w := &Worker{log: zerolog.New(io.Discard)}
	j := &job{cmd: events.DisconnectCommand{CommandID: "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10", AgentID: 4711,
		Number: "13800001234"}, attempts: 1}
	out := outcome{res: &events.Result{CommandID: j.cmd.CommandID, AgentID: 4711, Number: "13800001234",
		Status: events.StatusAccepted, RetCode: "0", Attempts: 1}}
	b.ReportAllocs()
	for b.Loop() {
		w.logOutcome(j, out, nil)
	}
}
