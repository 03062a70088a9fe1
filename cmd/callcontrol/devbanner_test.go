package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// The banner names --nats-url only when the commands would not find the
// embedded server without it, and offers disconnect only with demo agents.
func TestDevCommands(t *testing.T) {
	for _, c := range []struct {
		url    string
		agents int
		want   []string
	}{
		{defaultNATSURL, 5, []string{"  go run ./cmd/callcontrol disconnect --agent 101 --number 5550101 --wait",
			"  go run ./cmd/callcontrol watch", "  go run ./cmd/callcontrol agents"}},
		{"nats://127.0.0.1:14222", 1, []string{"  go run ./cmd/callcontrol disconnect --nats-url nats://127.0.0.1:14222 --agent 101 --number 5550101 --wait",
			"  go run ./cmd/callcontrol watch --nats-url nats://127.0.0.1:14222", "  go run ./cmd/callcontrol agents --nats-url nats://127.0.0.1:14222"}},
		{defaultNATSURL, 0, []string{"  go run ./cmd/callcontrol watch", "  go run ./cmd/callcontrol agents"}},
	} {
		got := strings.Split(strings.TrimSuffix(devCommands(c.url, c.agents), "\n"), "\n")
		if got[0] != "run beside it:" || strings.Join(got[1:], "\n") != strings.Join(c.want, "\n") {
			t.Errorf("devCommands(%s, %d):\n%s\nwant:\n%s", c.url, c.agents, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

// The commands dev's banner prints work as printed (here on a random
// port, so each carries --nats-url): watch, started first, prints the
// result and the confirmation of the banner's disconnect, which is
// accepted and confirmed, and agents lists the demo agent.
func TestDevBannerCommands(t *testing.T) {
	url, out, _ := startDev(t, "dev", "--agents", "1")
	var cmds [][]string
	for _, m := range regexp.MustCompile(`(?m)^  go run \./cmd/callcontrol (.*)$`).FindAllStringSubmatch(out.String(), -1) {
		cmds = append(cmds, strings.Fields(m[1]))
	}
	if len(cmds) != 3 || cmds[0][0] != "disconnect" || cmds[1][0] != "watch" || cmds[2][0] != "agents" {
		t.Fatalf("banner commands %q, want disconnect, watch, agents:\n%s", cmds, out.String())
	}
	for _, c := range cmds {
		if !strings.Contains(strings.Join(c, " "), "--nats-url "+url) {
			t.Fatalf("banner command %q does not name --nats-url %s", c, url)
		}
	}
	// watch tails from now: wait until its consumers exist, so that it
	// cannot miss what the disconnect publishes.
	_, js := testenv.Connect(t, url)
	consumers := func() int {
		n := 0
		for _, name := range []string{events.StreamResults, events.StreamEvents} {
			st, err := js.Stream(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			n += consumerCount(t, st)
		}
		return n
	}
	before := consumers()
	ctx, stopWatch := context.WithCancel(context.Background())
	var watched testenv.SyncBuffer
	watchDone := make(chan error, 1)
	go func() { watchDone <- run(ctx, cmds[1], &watched) }()
	t.Cleanup(func() { stopWatch(); <-watchDone })
	testenv.WaitFor(t, 10*time.Second, "watch's consumers", func() bool { return consumers() >= before+2 })

	for _, c := range []struct {
		args []string
		want string
	}{{cmds[0], `(?m)^accepted .*\n(?s:.*)^confirmed `}, {cmds[2], `(?m)^101\s`}} {
		var got testenv.SyncBuffer
		if err := run(context.Background(), c.args, &got); err != nil || !regexp.MustCompile(c.want).MatchString(got.String()) {
			t.Fatalf("%q: %v; want %s in:\n%s", c.args, err, c.want, got.String())
		}
	}
	testenv.WaitFor(t, 10*time.Second, "watch to print the result and the confirmation", func() bool {
		return regexp.MustCompile(`(?m)accepted .*agent=101(?s:.*)confirmed .*agent=101`).MatchString(watched.String())
	})
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Errorf("watch: %v", err)
	}
	watchDone <- nil // for the cleanup
}

// consumerCount is the number of consumers on st now.
func consumerCount(t *testing.T, st jetstream.Stream) int {
	t.Helper()
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
