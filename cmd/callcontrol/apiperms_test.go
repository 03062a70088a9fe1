package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// The api role of deployments/nats/accounts.conf can do its work and no
// more: the real api role (provisioning and readiness included) runs as
// the api user beside the worker and poller as theirs, and every route it
// serves (a disconnect with Prefer: wait, the command, agents, events,
// dead letters, the replay of a dead letter, which clears its ledger
// record) answers without a permission violation; the api user
// cannot delete the commands stream, write the sessions or the
// call state, consume the commands, provision the workers' part or touch
// the workers' consumer of exhausted commands.
func TestAPIRolePermissions(t *testing.T) {
	pw := map[string]string{"admin": "a-pw", "publisher": "p-pw", "worker": "w-pw", "poller": "po-pw", "analytics": "an-pw", "api": "api-pw"}
	url, violations := startConfiguredNATS(t, pw)
	as := func(role string) string { return userURL(url, role, pw[role]) }

	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{AuthMode: 2, GUIDInterval: time.Second, PollHold: 300 * time.Millisecond})
	gwFlags := []string{"--gateway-url", gwURL, "--gateway-ca", ca}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	tokenFile := `{"tokens":[{"name":"crm","sha256":"` + api.HashToken("tok") + `","scopes":["commands:write","commands:read","events:read","dlq:write"]}]}`
	if err := os.WriteFile(tokens, []byte(tokenFile), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(role string, args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx, append([]string{role, "--nats-url", as(role)}, args...), &bytes.Buffer{}); err != nil {
				t.Errorf("%s: %v", role, err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	// The api role starts first: it provisions the shared part itself.
	apiHealth := freeAddr(t)
	start("api", "--api-tokens", tokens, "--api-listen", "127.0.0.1:0", "--health-listen", apiHealth)
	base := apiURL(t, &logs)
	// Ready as the api user (the readiness probe of deployments/k8s/api.yaml).
	testenv.WaitFor(t, 30*time.Second, "the api ready", func() bool {
		ok, _ := httpOK("http://" + apiHealth + "/readyz")
		return ok
	})
	start("worker", append([]string{"--confirm-within", "10s"}, gwFlags...)...)
	start("poller", append([]string{"--poll-lease-ttl", "3s", "--gateway-poll-timeout", "2s", "--poll-gap", "50ms"}, gwFlags...)...)
	adm := connectAs(t, as("admin"))
	testenv.WaitFor(t, 30*time.Second, "the worker and the poller to provision", func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, e1 := adm.Consumer(c, events.StreamCommands, events.ConsumerWorkers)
		_, e2 := adm.KeyValue(c, events.BucketPollers)
		return e1 == nil && e2 == nil
	})
	var out bytes.Buffer
	if err := run(ctx, append([]string{"signin", "--agent", "101", "--nats-url", as("admin")}, gwFlags...), &out); err != nil {
		t.Fatalf("signin: %v (%s)", err, logs.String())
	}
	if _, err := sim.StartCall(101, "5550101"); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, body string, hdr map[string]string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.Bytes()
	}
	code, body := call("POST", "/v1/disconnects", `{"agent_id":101,"number":"5550101"}`,
		map[string]string{"Idempotency-Key": `"perm-1"`, "Prefer": "wait=30"})
	var acc api.Accepted
	if err := json.Unmarshal(body, &acc); code != http.StatusOK || err != nil || acc.Result == nil || acc.Result.Status != "accepted" {
		t.Fatalf("POST /v1/disconnects as the api user: %d %s\nviolations: %q", code, body, violations.snapshot())
	}
	// The same key again: the first response, from the idempotency bucket.
	if code, again := call("POST", "/v1/disconnects", `{"agent_id":101,"number":"5550101"}`,
		map[string]string{"Idempotency-Key": `"perm-1"`}); code != http.StatusOK || !bytes.Equal(again, body) {
		t.Fatalf("the same key again: %d %s, want the first response", code, again)
	}
	// A 202: the marker in the idempotency bucket.
	if code, b := call("POST", "/v1/disconnects", `{"agent_id":102,"number":"5550102"}`, map[string]string{"Idempotency-Key": `"perm-2"`}); code != http.StatusAccepted {
		t.Fatalf("POST without wait: %d %s", code, b)
	}
	for _, path := range []string{"/v1/commands/perm-1", "/v1/commands/perm-2", "/v1/agents", "/v1/agents/101", "/v1/deadletters"} {
		if code, b := call("GET", path, "", nil); code != http.StatusOK {
			t.Errorf("GET %s as the api user: %d %s", path, code, b)
		}
	}
	// Agent 102 has no session: its command is a dead letter, which the
	// api user reads and replays (it has not expired).
	testenv.WaitFor(t, 20*time.Second, "the dead letter", func() bool {
		code, _ := call("GET", "/v1/deadletters/1", "", nil)
		return code == http.StatusOK
	})
	readEvents(t, base, 2)
	if got := violations.snapshot(); len(got) > 0 {
		t.Fatalf("permission violations while the api role did its work:\n%s", strings.Join(got, "\n"))
	}
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Fatalf("errors logged:\n%s", logs.String())
	}

	// The replay of a dead letter clears its ledger record and publishes
	// the command again: the api user may (dlq:write tokens only).
	cmds := func() uint64 {
		s, err := adm.Stream(ctx, events.StreamCommands)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := cmds()
	if code, b := call("POST", "/v1/deadletters/1/replay", "", nil); code/100 != 2 {
		t.Errorf("POST /v1/deadletters/1/replay as the api user: %d %s, want it replayed", code, b)
	}
	if after := cmds(); after != before+1 {
		t.Errorf("commands: %d, then %d after a replay, want one more", before, after)
	}
	if got := violations.snapshot(); len(got) > 0 {
		t.Fatalf("permission violations in the replay:\n%s", strings.Join(got, "\n"))
	}

	// What must be refused.
	ajs := connectAs(t, as("api"))
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	c, cc := short()
	if err := ajs.DeleteStream(c, events.StreamCommands); err == nil {
		t.Error("the api user deleted the commands stream")
	}
	cc()
	for _, subj := range []string{
		"$KV." + events.BucketSessions + ".101",
		"$KV." + events.BucketCalls + ".101",
	} {
		c, cc = short()
		if _, err := ajs.Publish(c, subj, []byte(`{"forged":true}`)); err == nil {
			t.Errorf("the api user wrote %s", subj)
		}
		cc()
	}
	c, cc = short()
	if err := ajs.DeleteConsumer(c, events.StreamDeadLetter, events.ConsumerExhausted); err == nil {
		t.Error("the api user deleted the workers' consumer of exhausted commands")
	}
	cc()
	c, cc = short()
	if _, err := ajs.CreateOrUpdateConsumer(c, events.StreamCommands, jetstream.ConsumerConfig{Durable: "sneaky"}); err == nil {
		t.Error("the api user created a consumer on the commands")
	}
	cc()
	c, cc = short()
	if err := topology.Provision(c, ajs, topology.Config{}, topology.Workers); err == nil {
		t.Error("the api user provisioned the workers' part")
	}
	cc()
	if _, err := adm.Stream(ctx, events.StreamCommands); err != nil {
		t.Errorf("the commands stream: %v", err)
	}
}

// apiURL waits for the api role's "api serving" line in logs and returns
// its URL.
func apiURL(t *testing.T, logs *testenv.SyncBuffer) string {
	t.Helper()
	var url string
	re := regexp.MustCompile(`"url":"(https?://[0-9.:]+)"`)
	testenv.WaitFor(t, 30*time.Second, "the api to serve", func() bool {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url
}

// readEvents reads n events of GET /v1/events from the start of the
// streams and closes the stream.
func readEvents(t *testing.T, base string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Last-Event-ID", "0.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/events: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %d", res.StatusCode)
	}
	sc, got := bufio.NewScanner(res.Body), 0
	for got < n && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event:") {
			got++
		}
	}
	if got < n {
		t.Fatalf("GET /v1/events: %d events, want %d (%v)", got, n, sc.Err())
	}
}
