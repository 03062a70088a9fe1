package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/worker"
)

// `disconnect --call-id` (or CALLCONTROL_CALL_ID) puts the call_id in the
// published command; a malformed one is refused naming the flag and the
// variable, and nothing is published.
func TestDisconnectCallID(t *testing.T) {
	url, js := testJetStream(t, worker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last := func(t *testing.T) events.DisconnectCommand {
		t.Helper()
		st, err := js.Stream(ctx, events.StreamCommands)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.GetLastMsgForSubject(ctx, events.SubjectDisconnect)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := events.DecodeDisconnect(raw.Data)
		if err != nil {
			t.Fatalf("published %s: %v", raw.Data, err)
		}
		if got := raw.Header.Get(events.HeaderMsgID); got != cmd.CommandID {
			t.Errorf("Nats-Msg-Id %q, command_id %q", got, cmd.CommandID)
		}
		return cmd
	}
	base := []string{"disconnect", "--nats-url", url, "--agent", "101", "--number", "5550101"}

	var out bytes.Buffer
	if err := run(ctx, append(base, "--command-id", "flag-1", "--call-id", "1767366245-101"), &out); err != nil {
		t.Fatalf("disconnect --call-id: %v\n%s", err, out.String())
	}
	if c := last(t); c.CommandID != "flag-1" || c.CallID != "1767366245-101" {
		t.Errorf("published %+v, want command flag-1 with call_id 1767366245-101", c)
	}

	t.Setenv("CALLCONTROL_CALL_ID", "1767366245-102")
	if err := run(ctx, append(base, "--command-id", "env-1"), &out); err != nil {
		t.Fatalf("disconnect with CALLCONTROL_CALL_ID: %v\n%s", err, out.String())
	}
	if c := last(t); c.CommandID != "env-1" || c.CallID != "1767366245-102" {
		t.Errorf("published %+v, want command env-1 with call_id 1767366245-102", c)
	}

	t.Setenv("CALLCONTROL_CALL_ID", "")
	if err := run(ctx, append(base, "--command-id", "plain-1"), &out); err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}
	if c := last(t); c.CommandID != "plain-1" || c.CallID != "" {
		t.Errorf("published %+v, want command plain-1 without call_id", c)
	}

	err := run(ctx, append(base, "--command-id", "bad-1", "--call-id", "1767366245 101"), &out)
	if err == nil || !strings.Contains(err.Error(), "--call-id (CALLCONTROL_CALL_ID)") {
		t.Fatalf("error = %v, want it to name --call-id (CALLCONTROL_CALL_ID)", err)
	}
	if c := last(t); c.CommandID != "plain-1" {
		t.Errorf("a refused command was published: %+v", c)
	}
}
