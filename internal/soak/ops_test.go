//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runner holds a run's parts and what it recorded.
type runner struct {
	seed  int64
	nats  *natsNode
	nc    *nats.Conn
	js    jetstream.JetStream
	sim   *gatewaySim
	gw    *gateway.Client
	hc    *http.Client // to the simulator, for forcelogout
	l     *launcher
	procs []*proc // worker-1, worker-2, poller-1, poller-2
	start time.Time

	mu      sync.Mutex
	cmds    []Command
	faults  []Fault
	pubs    map[int]pubMsg // op index -> the command it published
	dlq     []string       // dead-lettered (failed) command_ids not replayed yet
	dlqSeen map[string]bool
	secrets []string
	crashes []string
	replays map[string]int // "replayed", "refused", "error"
	// replayKeys are the Nats-Msg-Ids of the results the replays must get.
	replayKeys []string
	published  atomic.Int64
	traceN     atomic.Uint64
	skew       atomic.Int64 // the skewed requester's clock offset (ns), 0 = none
	async      sync.WaitGroup
}

// pubMsg is a published command, for duplicates and republishing.
type pubMsg struct {
	cmd  Command
	data []byte
}

func (r *runner) now() time.Time { return time.Now() }

// traceparent returns a new W3C traceparent with a unique trace ID.
func (r *runner) traceparent() (header, traceID string) {
	n := r.traceN.Add(1)
	traceID = fmt.Sprintf("%016x%016x", uint64(r.seed)^0x5eed50a4, n)
	return fmt.Sprintf("00-%s-%016x-01", traceID, n|1<<60), traceID
}

// publish sends data on callcontrol.disconnect with msgID (none when ""),
// a new traceparent and extra headers, retrying (same Nats-Msg-Id) while
// NATS does not answer, and records the command.
func (r *runner) publish(ctx context.Context, c Command, data []byte, msgID string, extra map[string]string) Command {
	m := nats.NewMsg(events.SubjectDisconnect)
	m.Data = data
	if msgID != "" {
		m.Header.Set(events.HeaderMsgID, msgID)
	}
	for k, v := range extra {
		m.Header.Set(k, v)
	}
	tp, traceID := r.traceparent()
	m.Header.Set(events.HeaderTraceparent, tp)
	c.MsgID, c.TraceID, c.Payload = msgID, traceID, string(data)
	deadline := time.Now().Add(90 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := r.js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			c.Published, c.Seq, c.Duplicate = time.Now(), ack.Sequence, ack.Duplicate
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break // recorded without an acknowledgement (Seq 0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.published.Add(1)
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	return c
}

// commandID is the ID of the command of op i (sub > 0 for a second
// message of the same op).
func (r *runner) commandID(i int) string { return fmt.Sprintf("soak-%06d", i) }

// exec runs op i of the schedule.
func (r *runner) exec(ctx context.Context, i int, o op) {
	switch o.Kind {
	case "plain", "scoped", "stale_scoped", "wrong_party", "guid_override", "skewed_ok", "skewed_bad",
		"expired", "about_to_expire", "hostile_callid":
		r.command(ctx, i, o)
	case "dup_now":
		c, data := r.command(ctx, i, o)
		if c.MsgID != "" {
			c.Kind = "duplicate"
			r.publish(ctx, c, data, c.MsgID, nil)
		}
	case "dup_later":
		if p, ok := r.pubOf(o.Ref); ok {
			c := p.cmd
			c.Kind = "duplicate"
			r.publish(ctx, c, p.data, c.CommandID, nil)
		}
	case "republished":
		if p, ok := r.pubOf(o.Ref); ok {
			c := p.cmd
			c.Kind, c.Valid = "republished", false
			r.publish(ctx, c, p.data, fmt.Sprintf("%s-again-%d", c.CommandID, i), nil)
		}
	case "malformed", "hostile":
		r.bad(ctx, i, o)
	case "replay":
		r.replay(ctx, o)
	default:
		r.agentOp(ctx, o)
	}
}

func (r *runner) pubOf(i int) (pubMsg, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pubs[i]
	return p, ok
}

// target picks the number (and call) a command for o.Agent aims at: a
// party of the agent's last call, or of an earlier (held) call.
func (r *runner) target(o op) (number, callID string, calls int) {
	cs := r.sim.sim.Calls(o.Agent)
	if len(cs) == 0 {
		return "5550" + strconv.Itoa(o.Agent), "", 0
	}
	c := cs[len(cs)-1]
	if len(cs) > 1 && o.B%5 == 0 {
		c = cs[o.B%len(cs)] // sometimes a held call: call_mismatch
	}
	if len(c.Parties) == 0 {
		return c.Customer, c.CallID, len(cs)
	}
	return c.Parties[o.A%len(c.Parties)], c.CallID, len(cs)
}

var ttls = []time.Duration{0, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}

// command publishes one well-formed command for op i.
func (r *runner) command(ctx context.Context, i int, o op) (Command, []byte) {
	number, callID, _ := r.target(o)
	now := r.now()
	dc := events.DisconnectCommand{CommandID: r.commandID(i), AgentID: o.Agent, Number: number,
		CorrelationID: fmt.Sprintf("case-%d", i), RequestedBy: []string{"crm", "ivr"}[o.A%2], TTL: ttls[o.B%len(ttls)]}
	if o.A%3 != 0 {
		dc.IssuedAt = now
	}
	kind, valid := o.Kind, true
	switch o.Kind {
	case "dup_now":
		kind = "plain"
	case "scoped":
		dc.CallID = callID
		if callID == "" {
			kind = "plain"
		}
	case "stale_scoped":
		kind, dc.CallID = "scoped", fmt.Sprintf("%d-%d", now.Add(-time.Hour).Unix(), 900000+o.B%1000)
		if cs := r.sim.sim.Calls(o.Agent); len(cs) > 0 && o.A%2 == 0 {
			// the customer's call ID with another sequence: looks real, is not
			dc.CallID = cs[0].CallID + "0"
		}
	case "hostile_callid":
		// A well-formed call_id (printable, no spaces) that is also a path:
		// it names no call of the agent, so it must fail and never be sent.
		kind = "hostile"
		dc.CallID = []string{"../../onlineagent/" + strconv.Itoa(o.Agent) + "/forcelogout", "x%2F..%2F..%2Fy",
			callID + "?isNoContainLastCall=1", callID + "/../" + callID, callID + "#x"}[o.B%5]
	case "wrong_party":
		kind, dc.Number = "plain", fmt.Sprintf("7%07d", o.B%10000000)
	case "guid_override":
		kind = "plain"
		dc.GUID = r.sessionGUID(ctx, o.Agent)
	case "skewed_ok":
		kind = "skewed"
		dc.IssuedAt, dc.TTL = now.Add(time.Duration(o.F*12000-8000)*time.Millisecond), 30*time.Second // -8s..+4s
	case "skewed_bad":
		kind = "skewed"
		dc.IssuedAt, dc.TTL = now.Add(time.Duration(7000+o.F*13000)*time.Millisecond), 30*time.Second // +7s..+20s
	case "expired":
		dc.TTL = time.Duration(5000+o.B%25000) * time.Millisecond
		switch o.A % 3 {
		case 0:
			dc.IssuedAt = now.Add(-dc.TTL - time.Duration(1000+o.B%29000)*time.Millisecond)
		case 1:
			dc.IssuedAt, dc.TTL, dc.ExpiresAt = time.Time{}, 0, now.Add(-time.Duration(1000+o.B%9000)*time.Millisecond)
		default:
			dc.IssuedAt, dc.TTL = now.Add(-65*time.Minute), 0
		}
	case "about_to_expire":
		tiny := time.Duration(1+o.B%300) * time.Millisecond
		switch o.A % 3 {
		case 0:
			dc.IssuedAt, dc.TTL = now, tiny
		case 1:
			dc.IssuedAt, dc.TTL = time.Time{}, tiny
		default:
			dc.IssuedAt, dc.TTL, dc.ExpiresAt = time.Time{}, 0, now.Add(tiny)
		}
	}
	if off := time.Duration(r.skew.Load()); off != 0 && (kind == "plain" || kind == "scoped") && o.A%2 == 0 {
		// the requester with the skewed clock
		kind, dc.RequestedBy = "skewed", "crm-skewed"
		dc.IssuedAt = now.Add(off)
		if dc.TTL == 0 {
			dc.TTL = 30 * time.Second
		}
	}
	data, err := json.Marshal(dc)
	if err != nil {
		panic(err)
	}
	c := Command{CommandID: dc.CommandID, AgentID: dc.AgentID, Number: dc.Number, CallID: dc.CallID, Valid: valid, Kind: kind}
	c = r.publish(ctx, c, data, dc.CommandID, nil)
	if kind == "skewed" && c.Seq == 0 {
		c.Valid = false // decided again from the stored time in settle
	}
	if isCommand(o.Kind) {
		r.mu.Lock()
		r.pubs[i] = pubMsg{cmd: c, data: data}
		r.mu.Unlock()
	}
	return c, data
}

// sessionGUID reads the agent's registered GUID (for a command's guid
// override), "" when there is none.
func (r *runner) sessionGUID(ctx context.Context, agent int) string {
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		return ""
	}
	e, err := kv.Get(ctx, strconv.Itoa(agent))
	if err != nil {
		return ""
	}
	var s events.Session
	_ = json.Unmarshal(e.Value(), &s)
	return s.GUID
}

// badPayloads are malformed ("m") and hostile ("h") commands; ID, AGENT and
// NUMBER are replaced by the command_id, the agent and a party of its call
// (so that a wrongly executed one would release someone). Each must end
// rejected and never be sent.
var badPayloads = []struct{ kind, payload string }{
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMB`},
	{"m", `not json at all`},
	{"m", ``},
	{"m", `[{"command_id":"ID","agent_id":AGENT,"number":"NUMBER"}]`},
	{"m", `{"command_id":"ID","agent_id":"AGENT","number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":99,"number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":60000,"number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT.5,"number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":NUMBER}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":null}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"1234567890123456789012345"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"agent_id":AGENT,"number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","ttl_ms":-5}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","ttl_ms":3600001}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","ttl_ms":1000,"expires_at":"2099-01-01T00:00:00Z"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","issued_at":"yesterday"}`},
	{"m", `{"agent_id":AGENT,"number":"NUMBER"}`},
	{"m", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","pad":"PAD"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER/../../onlineagent/AGENT/forcelogout"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"555/0101"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER%2F..%2F"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER?x=1"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER#x"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"+NUMBER"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER "}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER\u0000"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"\uff15\uff15\uff15\uff10\uff11"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","correlation_id":"x\r\nGuid: stolen"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","requested_by":"crm\nNats-Msg-Id: evil"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","guid":"abc\r\nX-Injected: 1"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"NUMBER","call_id":"a call id"}`},
	{"h", `{"command_id":"ID/../x","agent_id":AGENT,"number":"NUMBER"}`},
	{"h", `{"command_id":"ID","agent_id":1e20,"number":"NUMBER"}`},
	{"h", `{"command_id":"ID","agent_id":AGENT,"number":"0xNUMBER"}`},
}

// bad publishes a malformed or hostile payload.
func (r *runner) bad(ctx context.Context, i int, o op) {
	var idx []int
	for j, b := range badPayloads {
		if (b.kind == "m") == (o.Kind == "malformed") {
			idx = append(idx, j)
		}
	}
	b := badPayloads[idx[o.A%len(idx)]]
	number, _, _ := r.target(o)
	id := r.commandID(i)
	p := b.payload
	if strings.Contains(p, "PAD") {
		p = strings.Replace(p, "PAD", strings.Repeat("x", events.MaxCommandSize), 1)
	}
	p = strings.NewReplacer("ID", id, "AGENT", strconv.Itoa(o.Agent), "NUMBER", number, "NUMB", number[:len(number)/2]).Replace(p)
	c := Command{CommandID: id, AgentID: o.Agent, Number: number, Kind: o.Kind, Valid: false}
	r.publish(ctx, c, []byte(p), id, nil)
}

var replayLine = regexp.MustCompile(`^replayed\s+command=(\S+) dlq_seq=(\d+) .* msg_id=(\S+) deadline=(\S+)`)

// replay runs `callcontrol dlq replay` on a dead-lettered command, in the
// background (a process start takes a moment).
func (r *runner) replay(ctx context.Context, o op) {
	r.mu.Lock()
	if len(r.dlq) == 0 {
		r.mu.Unlock()
		return
	}
	k := o.A % len(r.dlq)
	id := r.dlq[k]
	r.dlq = append(r.dlq[:k], r.dlq[k+1:]...)
	r.mu.Unlock()
	args := []string{"dlq", "replay", id, "--nats-url", r.nats.url()}
	if o.B%5 == 0 {
		args = append(args, "--force", "--ttl", "10s")
	}
	r.async.Add(1)
	go func() {
		defer r.async.Done()
		out, err := r.l.run(ctx, "dlq-replay", args...)
		outcome := "refused"
		for _, line := range strings.Split(out, "\n") {
			m := replayLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			outcome = "replayed"
			c := Command{CommandID: m[1], MsgID: m[3], Kind: "replay", ReplayOf: m[1], Valid: true, Published: time.Now()}
			// Its result is filed under result-<command_id>-replay-<dlq seq>.
			key := events.ResultMsgID(m[1]) + events.ReplayMsgIDSuffix(m[2])
			if d, err := time.Parse(time.RFC3339Nano, m[4]); err == nil {
				c.Deadline = d
			}
			r.mu.Lock()
			r.cmds = append(r.cmds, c)
			r.replayKeys = append(r.replayKeys, key)
			r.mu.Unlock()
		}
		if err != nil && outcome != "replayed" && !strings.Contains(out, "refused") {
			outcome = "error"
		}
		r.mu.Lock()
		r.replays[outcome]++
		r.mu.Unlock()
	}()
}

// agentOp changes calls and sessions in the simulator. Errors (busy, no
// call, not signed in) are part of the game and ignored.
func (r *runner) agentOp(ctx context.Context, o op) {
	s := r.sim.sim
	a := o.Agent
	customer := "5550" + strconv.Itoa(a)
	if o.A%4 == 0 {
		customer = fmt.Sprintf("6%06d", o.B%1000000)
	}
	switch o.Kind {
	case "call_start":
		_, _ = s.StartCall(a, customer)
	case "call_end":
		_, _ = s.EndCall(a, "")
	case "redial":
		_, _ = s.Redial(a, "")
	case "hold":
		if s.Hold(a) == nil && o.B%2 == 0 {
			_, _ = s.StartCall(a, customer)
		}
	case "innerhelp":
		helper := firstAgent + o.B%numAgents
		_ = s.InnerHelp(a, helper, o.A%2 == 0)
	case "confjoin":
		_ = s.ConfJoin(a)
	case "hangup":
		if cs := s.Calls(a); len(cs) > 0 && len(cs[len(cs)-1].Parties) > 0 {
			ps := cs[len(cs)-1].Parties
			_ = s.CustomerHangup(a, ps[o.B%len(ps)])
		}
	case "signout":
		r.signOut(ctx, a)
	case "signin":
		if !r.signedIn(a) {
			_ = r.signIn(ctx, a)
			_, _ = s.StartCall(a, customer)
		}
	case "redial_delay":
		s.SetRedialAfter(time.Second + time.Duration(o.B%2001)*time.Millisecond)
	}
}

// signedIn reports whether the agent has a registered session.
func (r *runner) signedIn(agent int) bool {
	return r.sessionGUID(context.Background(), agent) != ""
}

// signIn signs agent in over HTTPS (forcelogin when signed in) and
// registers its session, as `callcontrol signin` does.
func (r *runner) signIn(ctx context.Context, agent int) error {
	guid, err := r.gw.SignIn(ctx, agent, gateway.SignInRequest{}, false)
	if gateway.RetCodeOf(err) == "100-002" {
		guid, err = r.gw.SignIn(ctx, agent, gateway.SignInRequest{}, true)
	}
	if err != nil {
		return fmt.Errorf("sign in agent %d: %w", agent, err)
	}
	r.addSecret(guid)
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	return registerSession(ctx, r.js, agent, guid)
}

// natsOpTimeout bounds the generator's own NATS requests: the run's
// context has a deadline (so nats.go adds no default timeout), and a
// reply lost to a NATS restart blocked the generator until it (seed
// 373494181: 11 minutes in a KeyValue lookup).
const natsOpTimeout = 5 * time.Second

func (r *runner) addSecret(s string) {
	r.mu.Lock()
	r.secrets = append(r.secrets, s)
	r.mu.Unlock()
}

// registerSession stores the agent's session and announces it, as
// `callcontrol signin` does.
func registerSession(ctx context.Context, js jetstream.JetStream, agent int, guid string) error {
	kv, err := js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		return err
	}
	sess := events.Session{GUID: guid, AuthMode: 2, State: events.SessionActive, UpdatedAt: time.Now().UTC()}
	if i := strings.LastIndexByte(guid, '.'); i >= 0 {
		sess.Node = guid[i+1:]
	}
	b, _ := json.Marshal(sess)
	rev, err := kv.Put(ctx, strconv.Itoa(agent), b)
	if err != nil {
		return err
	}
	ev, _ := json.Marshal(events.SessionEvent{AgentID: agent, Kind: events.SessionRegistered, At: sess.UpdatedAt})
	m := nats.NewMsg(events.SessionEventSubject(agent, events.SessionRegistered))
	m.Data = ev
	m.Header.Set(events.HeaderMsgID, fmt.Sprintf("session-%d-%d", agent, rev))
	_, err = js.PublishMsg(ctx, m)
	return err
}

// forceLogout signs the agent out on the gateway with its registered GUID
// (DELETE onlineagent/{id}/forcelogout), releasing its calls.
func (r *runner) forceLogout(ctx context.Context, agent int) {
	guid := r.sessionGUID(ctx, agent)
	if guid == "" {
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete,
		fmt.Sprintf("%s/agentgateway/resource/onlineagent/%d/forcelogout", r.sim.url(), agent), nil)
	req.Header.Set("Guid", guid)
	if resp, err := r.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}

// signOut signs the agent out and removes its session, as
// `callcontrol signout` does.
func (r *runner) signOut(ctx context.Context, agent int) {
	r.forceLogout(ctx, agent)
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	if kv, err := r.js.KeyValue(ctx, events.BucketSessions); err == nil {
		_ = kv.Delete(ctx, strconv.Itoa(agent))
	}
}
