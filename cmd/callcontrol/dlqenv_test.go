package main

// The dead-letter tests' environment: NATS, the simulator and the roles as
// in production, driven through the CLI.

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/callcontrol/callcontrol/admin"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// dlqEnv is a NATS server, a simulator, a worker and a poller for one test.
type dlqEnv struct {
	t           *testing.T
	natsURL     string
	js          jetstream.JetStream
	sim         *gatewaysim.Sim
	gwURL, gwCA string
}

// newDLQEnv starts roles ("worker", "poller") for the whole test.
func newDLQEnv(t *testing.T, roles ...string) *dlqEnv {
	t.Helper()
	natsURL, js := testJetStream(t, worker.Config{})
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{})
	e := &dlqEnv{t: t, natsURL: natsURL, js: js, sim: sim, gwURL: gwURL, gwCA: ca}
	if len(roles) > 0 {
		t.Cleanup(e.start(roles...))
	}
	return e
}

// start runs the roles in this process until the returned func is called.
func (e *dlqEnv) start(roles ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(roles))
	common := []string{"--nats-url", e.natsURL, "--gateway-url", e.gwURL, "--gateway-ca", e.gwCA, "--log-level", "error"}
	for _, role := range roles {
		go func() { done <- run(ctx, append([]string{role}, common...), &bytes.Buffer{}) }()
	}
	return func() {
		cancel()
		for range roles {
			if err := <-done; err != nil {
				e.t.Errorf("role: %v", err)
			}
		}
	}
}

// cli runs one callcontrol command against the test's NATS server.
func (e *dlqEnv) cli(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append(args, "--nats-url", e.natsURL), &out)
	return out.String(), err
}

// status returns the command's status, or nil while it is not found.
func (e *dlqEnv) status(id string) *admin.CommandStatus {
	out, err := e.cli("status", id, "--json", "--reveal-number")
	if err != nil {
		return nil
	}
	var st admin.CommandStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return &st
}

// waitStatus polls status until the ledger holds a result with status s.
func (e *dlqEnv) waitStatus(id string, s events.Status) *admin.CommandStatus {
	e.t.Helper()
	var st *admin.CommandStatus
	testenv.WaitFor(e.t, 20*time.Second, "command "+id+" to be "+string(s), func() bool {
		st = e.status(id)
		return st != nil && st.Ledger != nil && st.Ledger.Result != nil && st.Ledger.Result.Status == s
	})
	return st
}

// signIn gives agent a session and a call with number.
func (e *dlqEnv) signIn(agent int, number string) {
	e.t.Helper()
	guid, err := e.sim.SignIn(agent)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := newAdmin(e.js).RegisterSession(context.Background(), agent, guid, 1); err != nil {
		e.t.Fatal(err)
	}
	e.call(agent, number)
}

// onCall signs agent in at the gateway only and puts it on a call with
// number: the session is not registered (the cause a replay fixes, with
// register), and the call is up before any command for it.
func (e *dlqEnv) onCall(agent int, number string) (guid string) {
	e.t.Helper()
	guid, err := e.sim.SignIn(agent)
	if err != nil {
		e.t.Fatal(err)
	}
	e.call(agent, number)
	return guid
}

func (e *dlqEnv) register(agent int, guid string) {
	e.t.Helper()
	if err := newAdmin(e.js).RegisterSession(context.Background(), agent, guid, 1); err != nil {
		e.t.Fatal(err)
	}
}

// waitCall waits until the pollers' call state shows agent on a call.
func (e *dlqEnv) waitCall(agent int) {
	e.t.Helper()
	testenv.WaitFor(e.t, 20*time.Second, "the agent's call in the call state", func() bool {
		st, err := newAdmin(e.js).CallState(context.Background(), agent)
		return err == nil && st != nil && st.Polling && st.LastCall() != nil
	})
}

func (e *dlqEnv) call(agent int, number string) {
	e.t.Helper()
	if _, err := e.sim.StartCall(agent, number); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dlqEnv) publish(cmd events.DisconnectCommand) {
	e.t.Helper()
	if err := newAdmin(e.js).Publish(context.Background(), cmd, ""); err != nil {
		e.t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: want %q in:\n%s", what, w, out)
		}
	}
}

func mustNotContain(t *testing.T, what, out string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(out, b) {
			t.Fatalf("%s: %q must not appear in:\n%s", what, b, out)
		}
	}
}
