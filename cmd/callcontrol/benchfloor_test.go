package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/bench"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The floor's child executes each command once: its ledger record before
// the POST (with --ledger), the POST, the result, the ack. Its figures
// bound the worker's only if it does all of that.
func TestBenchFloorExecutesEachCommand(t *testing.T) {
	for _, withLedger := range []bool{false, true} {
		t.Run(map[bool]string{false: "execute only", true: "with ledger"}[withLedger], func(t *testing.T) {
			url, js := testJetStream(t, worker.DefaultConfig())
			sim, gwURL, ca := testGateway(t, gatewaysim.Config{AuthMode: 1})
			ctx := t.Context()
			const stream = "BENCH_EXEC_TEST"
			if err := bench.ProvisionFloor(ctx, js, stream); err != nil {
				t.Fatal(err)
			}
			agents := []int{101, 102, 103}
			guids := map[int]string{}
			for _, a := range agents {
				guid, err := sim.SignIn(a)
				if err != nil {
					t.Fatal(err)
				}
				guids[a] = guid
				if _, err := sim.StartCall(a, bench.Customer(a)); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(t.TempDir(), "guids.json")
			if err := bench.WriteGUIDs(file, guids, agents); err != nil {
				t.Fatal(err)
			}
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			cctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- run(cctx, []string{"bench-floor", "--nats-url", url, "--gateway-url", gwURL, "--gateway-ca", ca,
					"--health-listen", port, "--stream", stream, "--guids", file, "--concurrency", "2",
					"--ledger=" + strconv.FormatBool(withLedger)}, nil)
			}()
			t.Cleanup(func() {
				stop()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("bench-floor: %v", err)
				}
			})
			for _, a := range agents {
				data, _ := json.Marshal(events.DisconnectCommand{CommandID: bench.CommandID("t", a), AgentID: a, Number: bench.Customer(a), TTL: time.Minute})
				if _, err := js.Publish(ctx, "bench."+stream, data); err != nil {
					t.Fatal(err)
				}
			}
			results, err := js.Stream(ctx, stream+"_RESULTS")
			if err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "three results", func() bool {
				info, err := results.Info(ctx)
				return err == nil && info.State.Msgs == uint64(len(agents))
			})
			cons, err := js.Consumer(ctx, stream, "bench")
			if err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "every command acked", func() bool {
				info, err := cons.Info(ctx)
				return err == nil && info.AckFloor.Stream == uint64(len(agents)) && info.NumAckPending == 0
			})
			if got := len(sim.Disconnects()); got != len(agents) {
				t.Errorf("simulator executed %d disconnects, want %d", got, len(agents))
			}
			ledger, err := js.KeyValue(ctx, events.BucketLedger)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range agents {
				_, err := ledger.Get(ctx, bench.CommandID("t", a))
				if withLedger && err != nil {
					t.Errorf("ledger record of agent %d: %v", a, err)
				}
				if !withLedger && !errors.Is(err, jetstream.ErrKeyNotFound) {
					t.Errorf("ledger record of agent %d without --ledger: err = %v, want none", a, err)
				}
			}
			msg, err := results.GetMsg(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			var res events.Result
			if err := json.Unmarshal(msg.Data, &res); err != nil || res.Status != events.StatusAccepted ||
				nats.Header(msg.Header).Get(events.HeaderMsgID) != events.ResultMsgID(res.CommandID) {
				t.Errorf("result = %+v (%v), header %v: want accepted, with its Nats-Msg-Id", res, err, msg.Header)
			}
		})
	}
}
