package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/nats-io/nats.go/jetstream"
)

// The event types of GET /v1/events, and the scope each needs.
const (
	EventResult       = "result"       // commands:read
	EventConfirmation = "confirmation" // commands:read
	EventAgent        = "agent_event"  // events:read
)

var eventScopes = map[string]Scope{EventResult: ScopeCommandsRead, EventConfirmation: ScopeCommandsRead, EventAgent: ScopeEventsRead}

// errSlowClient ends a stream whose client does not read: its buffer of
// [Config.EventBuffer] events is full.
var errSlowClient = errors.New("the client does not keep up: its event buffer is full")

// streamPos is where a client is in the results and events streams: the
// last sequence of each it was sent (or that it skipped). Event IDs are
// "<results seq>.<events seq>"; Last-Event-ID resumes after both.
type streamPos struct{ results, events uint64 }

func (p streamPos) String() string {
	return strconv.FormatUint(p.results, 10) + "." + strconv.FormatUint(p.events, 10)
}

func parsePos(id string) (streamPos, bool) {
	r, e, ok := strings.Cut(strings.TrimSpace(id), ".")
	rs, err1 := strconv.ParseUint(r, 10, 64)
	es, err2 := strconv.ParseUint(e, 10, 64)
	return streamPos{rs, es}, ok && err1 == nil && err2 == nil
}

// sseItem is one message for a client: its stream position and, unless
// filtered out, the event to send.
type sseItem struct {
	results bool // from the results stream, else the events stream
	seq     uint64
	event   string // "": filtered out, only the position moves
	data    []byte
}

// eventQuery is what a client asked for.
type eventQuery struct {
	types map[string]bool
	agent int // 0: every agent in the token's range
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	q, p := eventsQuery(r, tok)
	if p != nil {
		writeProblem(w, p)
		return
	}
	pos, ok := parsePos(r.Header.Get("Last-Event-ID"))
	if !ok {
		var err error
		if pos, err = s.lastPos(r.Context()); err != nil {
			internalError(w, r, err)
			return
		}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	items := make(chan sseItem, s.cfg.EventBuffer)
	push := func(it sseItem) {
		select {
		case items <- it:
		default:
			cancel(errSlowClient)
		}
	}
	stop, err := s.follow(ctx, q, tok, pos, push)
	if err != nil {
		internalError(w, r, err)
		return
	}
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	err = s.stream(ctx, w, items, pos)
	if c := context.Cause(ctx); errors.Is(c, errSlowClient) {
		err = c
	}
	infoOf(r).err = err
}

// eventsQuery reads ?types=result,confirmation,agent_event&agent=101: the
// types default to those the token's scopes allow; asking for another is
// 403, as is an agent outside the range.
func eventsQuery(r *http.Request, tok *TokenEntry) (eventQuery, *Problem) {
	q := eventQuery{types: map[string]bool{}}
	asked := r.URL.Query().Get("types")
	for _, t := range []string{EventResult, EventConfirmation, EventAgent} {
		if asked == "" && tok.has(eventScopes[t]) {
			q.types[t] = true
		}
	}
	for t := range strings.SplitSeq(asked, ",") {
		if asked == "" {
			break
		}
		sc, ok := eventScopes[t]
		if !ok {
			return q, fieldProblem("types", "must be result, confirmation or agent_event, comma separated")
		}
		if !tok.has(sc) {
			return q, problem(http.StatusForbidden, CodeForbidden, "the token lacks the scope "+string(sc)+" for "+t)
		}
		q.types[t] = true
	}
	if len(q.types) == 0 {
		return q, problem(http.StatusForbidden, CodeForbidden, "the token lacks the scopes commands:read and events:read")
	}
	if v := r.URL.Query().Get("agent"); v != "" {
		var err error
		if q.agent, err = strconv.Atoi(v); err != nil || q.agent < events.AgentIDMin || q.agent > events.AgentIDMax {
			return q, fieldProblem("agent", "must be an agent ID")
		}
		if !tok.Agents.Contains(q.agent) {
			return q, problem(http.StatusForbidden, CodeForbidden, "agent "+v+" is outside the token's agent range")
		}
	}
	return q, nil
}

func fieldProblem(field, rule string) *Problem {
	p := problem(http.StatusBadRequest, CodeValidation, field+": "+rule)
	p.Field, p.Rule = field, rule
	return p
}

// lastPos is the streams' last sequences now: a new client starts after
// them.
func (s *Server) lastPos(ctx context.Context) (streamPos, error) {
	var p streamPos
	for name, dst := range map[string]*uint64{events.StreamResults: &p.results, events.StreamEvents: &p.events} {
		st, err := s.cfg.JetStream.Stream(ctx, name)
		if err != nil {
			return p, fmt.Errorf("stream %s: %w", name, err)
		}
		*dst = st.CachedInfo().State.LastSeq
	}
	return p, nil
}

// follow starts ordered consumers after pos on the streams q needs; push
// gets every message. stop stops them.
func (s *Server) follow(ctx context.Context, q eventQuery, tok *TokenEntry, pos streamPos, push func(sseItem)) (stop func(), err error) {
	var ccs []jetstream.ConsumeContext
	stop = func() {
		for _, c := range ccs {
			c.Stop()
		}
	}
	agentTok := "*"
	if q.agent != 0 {
		agentTok = strconv.Itoa(q.agent)
	}
	var evSubjects []string
	if q.types[EventConfirmation] {
		evSubjects = append(evSubjects, events.SubjectConfirmations+".>")
	}
	if q.types[EventAgent] {
		evSubjects = append(evSubjects, events.SubjectAgentEvents+"."+agentTok+".>")
	}
	keep := func(agent int) bool { return tok.Agents.Contains(agent) && (q.agent == 0 || agent == q.agent) }
	for _, f := range []struct {
		on       bool
		stream   string
		subjects []string
		after    uint64
		results  bool
	}{
		{q.types[EventResult], events.StreamResults, []string{events.SubjectResults + ".>"}, pos.results, true},
		{len(evSubjects) > 0, events.StreamEvents, evSubjects, pos.events, false},
	} {
		if !f.on {
			continue
		}
		cons, err := s.cfg.JetStream.OrderedConsumer(ctx, f.stream, jetstream.OrderedConsumerConfig{FilterSubjects: f.subjects,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: f.after + 1})
		if err != nil {
			stop()
			return nil, fmt.Errorf("stream %s: %w", f.stream, err)
		}
		results := f.results
		cc, err := cons.Consume(func(m jetstream.Msg) { push(toItem(m, results, keep)) })
		if err != nil {
			stop()
			return nil, fmt.Errorf("stream %s: %w", f.stream, err)
		}
		ccs = append(ccs, cc)
	}
	return stop, nil
}

// toItem turns m into the client's event, masked, or a position-only item
// when keep refuses its agent.
func toItem(m jetstream.Msg, results bool, keep func(int) bool) sseItem {
	it := sseItem{results: results}
	if meta, err := m.Metadata(); err == nil {
		it.seq = meta.Sequence.Stream
	}
	var v any
	var agent int
	switch subj := m.Subject(); {
	case results:
		var r events.Result
		if json.Unmarshal(m.Data(), &r) == nil {
			v, agent, it.event = maskResult(r), r.AgentID, EventResult
		}
	case strings.HasPrefix(subj, events.SubjectConfirmations+"."):
		var c events.Confirmation
		if json.Unmarshal(m.Data(), &c) == nil {
			v, agent, it.event = maskConfirmation(c), c.AgentID, EventConfirmation
		}
	default:
		var a events.AgentEvent
		if json.Unmarshal(m.Data(), &a) == nil {
			a.Number = masker.Number(a.Number)
			v, agent, it.event = a, a.AgentID, EventAgent
		}
	}
	if it.event == "" || !keep(agent) {
		it.event = ""
		return it
	}
	it.data, _ = json.Marshal(v)
	return it
}

// SSE timings and sizes.
const (
	sseHeartbeat = 15 * time.Second
	sseBatch     = 32 << 10 // bytes of events written at once, at most (about)
)

// advance moves p past it and returns its event's text ("" for a
// filtered-out item).
func (p *streamPos) advance(it sseItem) string {
	if it.results {
		p.results = it.seq
	} else {
		p.events = it.seq
	}
	if it.event == "" {
		return ""
	}
	return "id: " + p.String() + "\nevent: " + it.event + "\ndata: " + string(it.data) + "\n\n"
}

// stream writes items to w until ctx ends or a write fails; each write
// must complete within Config.EventWriteTimeout.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, items <-chan sseItem, pos streamPos) error {
	rc := http.NewResponseController(w)
	// Each write has its own deadline, cleared after it: between writes
	// the stream may idle (an HTTP/2 stream whose deadline passes is
	// reset even while idle), and the server's WriteTimeout, meant for
	// the other routes, must not end it.
	deadline := func(t time.Time) error {
		if err := rc.SetWriteDeadline(t); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	write := func(text string) error {
		if err := deadline(time.Now().Add(s.cfg.EventWriteTimeout)); err != nil {
			return err
		}
		if _, err := w.Write([]byte(text)); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		return deadline(time.Time{})
	}
	if err := write(": stream from " + pos.String() + "\n\n"); err != nil {
		return err
	}
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if err := write(": keepalive\n\n"); err != nil {
				return err
			}
		case it := <-items:
			text := pos.advance(it)
			for more := true; more && len(text) < sseBatch; { // what is there already, in one write
				select {
				case it := <-items:
					text += pos.advance(it)
				default:
					more = false
				}
			}
			if text == "" {
				continue
			}
			if err := write(text); err != nil {
				return err
			}
		}
	}
}
