package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/ledger"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// FloorConfig is what the floor's child executes (see RunFloor).
type FloorConfig struct {
	// Stream holds the commands, with the durable consumer "bench"
	// (see ProvisionFloor); the results go to FloorResults(Stream).
	Stream string
	// GUIDs are each agent's GUID (see WriteGUIDs).
	GUIDs map[int]string
	// Ledger: create a ledger record before each POST.
	Ledger bool
	// Concurrency is the commands in flight.
	Concurrency int
}

// RunFloor executes the commands of cfg.Stream, cfg.Concurrency at a
// time, until ctx ends (nil) or one fails (its error): the least any
// worker does for a command (see floor.go). gw must have at least
// cfg.Concurrency connections.
func RunFloor(ctx context.Context, js jetstream.JetStream, gw *gateway.Client, cfg FloorConfig) error {
	f := floor{js: js, gw: gw, guids: cfg.GUIDs, results: FloorResults(cfg.Stream)}
	if cfg.Ledger {
		var err error
		if f.ledger, err = js.KeyValue(ctx, events.BucketLedger); err != nil {
			return err
		}
	}
	cons, err := js.Consumer(ctx, cfg.Stream, "bench")
	if err != nil {
		return err
	}
	return f.run(ctx, cons, cfg.Concurrency)
}

// floor executes commands as described at the top of floor.go.
type floor struct {
	js      jetstream.JetStream
	gw      *gateway.Client
	ledger  jetstream.KeyValue // nil: none
	guids   map[int]string
	results string // the subject
}

// run executes commands from cons, conc at a time, until ctx ends or one fails.
func (f floor) run(ctx context.Context, cons jetstream.Consumer, conc int) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(conc))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); it.Stop() }()
	g, gctx := errgroup.WithContext(ctx)
	for range conc {
		g.Go(func() error {
			for {
				m, err := it.Next()
				if err != nil {
					return nil // stopped
				}
				if err := f.execute(gctx, m); err != nil {
					it.Stop()
					return err
				}
			}
		})
	}
	return g.Wait()
}

func (f floor) execute(ctx context.Context, m jetstream.Msg) error {
	cmd, err := events.DecodeDisconnect(m.Data())
	if err != nil {
		return err
	}
	if f.ledger != nil {
		if _, err := f.ledger.Create(ctx, cmd.CommandID, ledger.Started("bench-floor", "")); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	if err := f.gw.Disconnect(ctx, cmd.AgentID, cmd.Number, f.guids[cmd.AgentID]); err != nil {
		return err
	}
	now := time.Now().UTC()
	data, err := json.Marshal(events.Result{CommandID: cmd.CommandID, AgentID: cmd.AgentID, Number: cmd.Number,
		Status: events.StatusAccepted, RetCode: "0", Attempts: 1, IssuedAt: now, ExpiresAt: now, CompletedAt: now})
	if err != nil {
		return err
	}
	r := nats.NewMsg(f.results)
	r.Data = data
	r.Header.Set(events.HeaderMsgID, events.ResultMsgID(cmd.CommandID))
	r.Header.Set(events.HeaderCommandID, cmd.CommandID)
	if _, err := f.js.PublishMsg(ctx, r); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return m.Ack()
}
