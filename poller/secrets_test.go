package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// secretRecorder sits between the gateway clients and the simulator and
// records every GUID the simulator issued (Set-GUID) or was sent (Guid)
// and every password of a sign-in.
type secretRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]bool
}

func (s *secretRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.add(r.Header.Get("Guid"))
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/onlineagent/") && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		var in struct{ Password string }
		_ = json.Unmarshal(body, &in)
		s.add(in.Password)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.next.ServeHTTP(&setGUIDWriter{ResponseWriter: w, rec: s}, r)
}

// add records a secret; a GUID also by its UUID part alone, so that a
// leak of the part before ".AgentGatewayN" is caught too.
func (s *secretRecorder) add(v string) {
	v, _, _ = strings.Cut(strings.TrimPrefix(strings.TrimSpace(v), "JSESSIONID="), ";")
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[v] = true
	if uuid, _, ok := strings.Cut(v, "."); ok && len(uuid) >= 8 {
		s.seen[uuid] = true
	}
}

func (s *secretRecorder) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.seen))
	for v := range s.seen {
		out = append(out, v)
	}
	return out
}

// setGUIDWriter records the Set-GUID header of an answer.
type setGUIDWriter struct {
	http.ResponseWriter
	rec   *secretRecorder
	wrote bool
}

func (w *setGUIDWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.rec.add(w.Header().Get("Set-GUID"))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *setGUIDWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *setGUIDWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// A worker and a poller run against the simulator over HTTPS through
// sign-in with passwords, GUID rotation (AUTHMODE 2), a session taken over
// elsewhere, a stale GUID, accepted, failed and rejected disconnects and
// their confirmations. No GUID the simulator issued or accepted and no
// password ever appears in a log line or in any message (subject,
// headers, payload) of any stream, and no phone number appears unmasked
// in a log line.
//
// Not checked: the callcontrol_sessions bucket, which is the GUID registry
// and holds the current GUIDs by design. Metric labels: there are no
// metrics yet.
func TestSecretsNeverLeak(t *testing.T) {
	rec := &secretRecorder{seen: map[string]bool{}}
	b := setupWrapped(t, testConfig(), gatewaysim.Config{AuthMode: 2, GUIDInterval: 300 * time.Millisecond,
		GUIDTimeout: time.Second, PollHold: 200 * time.Millisecond},
		func(h http.Handler) http.Handler { rec.next = h; return rec })
	agents := agentsFrom(101, 5)
	b.startReplica("r1")
	b.startWorker(worker.Config{Concurrency: 8, FetchWait: 200 * time.Millisecond, InitialInterval: 20 * time.Millisecond,
		MaxInterval: 200 * time.Millisecond, SessionWait: 500 * time.Millisecond, ConfirmWithin: 10 * time.Second,
		ShutdownTimeout: 5 * time.Second, Instance: "w1"})
	testenv.WaitFor(t, 10*time.Second, "poller started", func() bool { return bytes.Contains(b.logs.Bytes(), []byte("poller started")) })

	gw := b.newGateway()
	ctx := context.Background()
	numbers := map[int]string{}
	first := map[int]string{}
	for _, a := range agents {
		guid, err := gw.SignIn(ctx, a, gateway.SignInRequest{Password: fmt.Sprintf("pw-%d-S3cret!", a)}, false)
		if err != nil {
			t.Fatalf("sign-in %d: %v", a, err)
		}
		b.register(a, guid)
		first[a] = guid
		numbers[a] = fmt.Sprintf("1380013%04d", a)
		if _, err := b.sim.StartCall(a, numbers[a]); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong password is refused (and recorded as a secret, too).
	if _, err := gw.SignIn(ctx, 101, gateway.SignInRequest{Password: "wrong-S3cret!"}, true); gateway.RetCodeOf(err) != "100-004" {
		t.Fatalf("sign-in with a wrong password: %v", err)
	}
	testenv.WaitFor(t, 15*time.Second, "GUIDs rotated", func() bool {
		return b.subjectCounts(events.SessionEventSubject(101, events.SessionRotated))[events.SessionEventSubject(101, events.SessionRotated)] >= 3
	})

	// Agent 105's session is taken over elsewhere: the stored GUID dies.
	if _, err := b.sim.SignIn(105); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "session 105 invalid", func() bool {
		return b.lastMsg(events.SessionEventSubject(105, events.SessionInvalidated)) != nil
	})

	cmds := []events.DisconnectCommand{
		{CommandID: "ok-101", AgentID: 101, Number: numbers[101], CorrelationID: "case-101"},
		{CommandID: "ok-102", AgentID: 102, Number: numbers[102]},
		{CommandID: "ok-103", AgentID: 103, Number: numbers[103]},
		{CommandID: "not-in-call", AgentID: 104, Number: "13999990000"},
		{CommandID: "taken-over", AgentID: 105, Number: numbers[105]},
		// A GUID override that rotated out long ago: the gateway answers
		// with a session error, which the worker reports as failed.
		{CommandID: "stale-guid", AgentID: 104, Number: numbers[104], GUID: first[104]},
	}
	for _, c := range cmds {
		c.TTL = 20 * time.Second
		b.publish(c)
	}
	b.publishRaw([]byte(`{"command_id":"bad","agent_id":99,"number":"12/../3"}`), "bad")
	testenv.WaitFor(t, 30*time.Second, "results", func() bool {
		return len(b.streamMsgs(events.StreamResults)) == len(cmds)+1
	})
	testenv.WaitFor(t, 30*time.Second, "confirmations", func() bool {
		return b.subjectCounts(events.ConfirmationSubject(events.ConfirmationConfirmed))[events.ConfirmationSubject(events.ConfirmationConfirmed)] == 3
	})
	b.checkOutcomes()

	secrets := append(rec.secrets(), b.registered()...)
	if len(secrets) < len(agents)*3 {
		t.Fatalf("only %d secrets recorded; the recorder sees no traffic", len(secrets))
	}
	logs := b.logs.Bytes()
	for _, s := range secrets {
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("log output contains the secret %.6s…", s)
		}
	}
	for _, n := range append(mapValues(numbers), "13999990000") {
		if bytes.Contains(logs, []byte(n)) {
			t.Errorf("log output contains the unmasked number %s", n)
		}
	}
	// The command stream holds what requesters published: the test itself
	// put first[104] there. Nothing else may hold it.
	b.checkStreams(secrets, func(stream, secret string) bool {
		return stream == events.StreamCommands && strings.HasPrefix(first[104], secret)
	})
}

// publishRaw publishes any payload with msgID as Nats-Msg-Id.
func (b *bundle) publishRaw(data []byte, msgID string) {
	b.t.Helper()
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	m.Header.Set(events.HeaderMsgID, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		b.t.Fatal(err)
	}
}

// checkOutcomes checks that the scenario took the intended paths.
func (b *bundle) checkOutcomes() {
	b.t.Helper()
	want := map[string]events.Status{"ok-101": events.StatusAccepted, "ok-102": events.StatusAccepted,
		"ok-103": events.StatusAccepted, "not-in-call": events.StatusFailed, "taken-over": events.StatusFailed,
		"stale-guid": events.StatusFailed, "bad": events.StatusRejected}
	for _, m := range b.streamMsgs(events.StreamResults) {
		var r events.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			b.t.Fatal(err)
		}
		if r.Status != want[r.CommandID] {
			b.t.Errorf("command %s: %s (%s), want %s", r.CommandID, r.Status, r.Reason, want[r.CommandID])
		}
		if r.CommandID == "stale-guid" && r.RetCode != "000-003" && r.RetCode != "100-006" {
			b.t.Errorf("stale GUID: retcode %q (%s), want a session error", r.RetCode, r.Reason)
		}
	}
}

// registered returns the GUIDs stored in the session registry now.
func (b *bundle) registered() []string {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.secrets...)
}

// checkStreams fails when a secret is in the subject, a header or the
// payload of any message of any stream but the session registry, unless
// exempt(stream, secret).
func (b *bundle) checkStreams(secrets []string, exempt func(stream, secret string) bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := b.js.StreamNames(ctx)
	checked := 0
	for name := range names.Name() {
		if name == "KV_"+events.BucketSessions {
			continue
		}
		for _, m := range b.streamMsgs(name) {
			checked++
			var hdr bytes.Buffer
			for k, vs := range m.Header {
				fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(vs, ","))
			}
			for _, s := range secrets {
				if exempt(name, s) {
					continue
				}
				for what, v := range map[string][]byte{"subject": []byte(m.Subject), "header": hdr.Bytes(), "payload": m.Data} {
					if bytes.Contains(v, []byte(s)) {
						b.t.Errorf("stream %s, message %d (%s): the %s contains the secret %.6s…", name, m.Sequence, m.Subject, what, s)
					}
				}
			}
		}
	}
	if names.Err() != nil {
		b.t.Fatal(names.Err())
	}
	if checked < 30 {
		b.t.Fatalf("only %d messages checked", checked)
	}
	b.t.Logf("%d messages checked against %d secrets", checked, len(secrets))
}

// streamMsgs returns every message stored in stream.
func (b *bundle) streamMsgs(stream string) []*jetstream.RawStreamMsg {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func mapValues(m map[int]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
