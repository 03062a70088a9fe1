package api

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

// DeadLetter is a dead letter as the API shows it: the number masked, the
// payload without its GUID (see admin.DeadLetter.SafePayload).
type DeadLetter struct {
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	CommandID string          `json:"command_id"`
	Status    events.Status   `json:"status"`
	Reason    string          `json:"reason,omitempty"`
	AgentID   int             `json:"agent_id,omitempty"`
	Number    string          `json:"number,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"` // GET /v1/deadletters/{seq} only
	Note      string          `json:"payload_note,omitempty"`
}

// DeadLetterList is the body of GET /v1/deadletters.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"deadletters"`
}

// Replayed is the body of a successful replay.
type Replayed struct {
	Seq       uint64    `json:"seq"`
	CommandID string    `json:"command_id"`
	MsgID     string    `json:"msg_id"`
	Deadline  time.Time `json:"deadline"`
	Duplicate bool      `json:"duplicate"`
	Notes     []string  `json:"notes"`
}

// Limits of GET /v1/deadletters.
const (
	defaultDeadLetterLimit = 100
	maxDeadLetterLimit     = 1000
)

func deadLetterView(d admin.DeadLetter, full bool) DeadLetter {
	v := DeadLetter{Seq: d.Seq, Time: d.Time, CommandID: d.CommandID, Status: d.Status,
		Reason: masker.Text(d.Reason, d.Cmd.Number), AgentID: d.Cmd.AgentID, Number: masker.Number(d.Cmd.Number)}
	if full {
		v.Payload, v.Note = d.SafePayload(masker)
	}
	return v
}

func (s *Server) getDeadLetters(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	f, p := deadLetterFilter(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	limit := f.Limit
	f.Limit = 0 // the range filter comes after: count what the token sees
	list, err := s.admin.DeadLetters(r.Context(), f)
	if err != nil {
		internalError(w, r, err)
		return
	}
	out := DeadLetterList{DeadLetters: []DeadLetter{}}
	for _, d := range list {
		if tok.Agents.Contains(d.Cmd.AgentID) {
			out.DeadLetters = append(out.DeadLetters, deadLetterView(d, false))
		}
	}
	if n := len(out.DeadLetters); n > limit {
		out.DeadLetters = out.DeadLetters[n-limit:]
	}
	writeJSON(w, http.StatusOK, out)
}

// deadLetterFilter reads ?status=failed,expired&agent=101&since=<RFC 3339>&limit=100.
func deadLetterFilter(r *http.Request) (admin.DeadLetterFilter, *Problem) {
	q := r.URL.Query()
	f := admin.DeadLetterFilter{Limit: defaultDeadLetterLimit}
	bad := func(name, rule string) (admin.DeadLetterFilter, *Problem) {
		p := problem(http.StatusBadRequest, CodeValidation, name+": "+rule)
		p.Field, p.Rule = name, rule
		return f, p
	}
	if v := q.Get("status"); v != "" {
		f.Statuses = map[events.Status]bool{}
		for st := range strings.SplitSeq(v, ",") {
			switch events.Status(st) {
			case events.StatusFailed, events.StatusExpired, events.StatusRejected:
				f.Statuses[events.Status(st)] = true
			default:
				return bad("status", "must be failed, expired or rejected, comma separated")
			}
		}
	}
	var err error
	if v := q.Get("agent"); v != "" {
		if f.Agent, err = strconv.Atoi(v); err != nil || f.Agent < events.AgentIDMin || f.Agent > events.AgentIDMax {
			return bad("agent", "must be an agent ID")
		}
	}
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return bad("since", "must be an RFC 3339 time")
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxDeadLetterLimit {
			return bad("limit", "must be 1-"+strconv.Itoa(maxDeadLetterLimit))
		}
	}
	return f, nil
}

// deadLetter finds {seq} in the token's range, or answers 404.
func (s *Server) deadLetter(w http.ResponseWriter, r *http.Request, tok *TokenEntry) (admin.DeadLetter, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		notFound(w, "dead letter")
		return admin.DeadLetter{}, false
	}
	d, err := s.admin.DeadLetter(r.Context(), seq)
	switch {
	case errors.Is(err, admin.ErrNoDeadLetter) || (err == nil && !tok.Agents.Contains(d.Cmd.AgentID)):
		notFound(w, "dead letter")
		return d, false
	case err != nil:
		internalError(w, r, err)
		return d, false
	}
	return d, true
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	if d, ok := s.deadLetter(w, r, tok); ok {
		writeJSON(w, http.StatusOK, deadLetterView(d, true))
	}
}

// ReplayRequest is the optional body of a replay: Force replays a
// command past its deadline, with an unknown deadline or an unknown
// outcome, re-dated to now with the lifetime TTLMillis (required with
// Force), as `callcontrol dlq replay --force --ttl` does.
type ReplayRequest struct {
	Force     bool  `json:"force"`
	TTLMillis int64 `json:"ttl_ms"`
}

// maxReplayBody is the size limit of a ReplayRequest.
const maxReplayBody = 1 << 10

// replayOptions reads the optional body, or returns its problem.
func replayOptions(w http.ResponseWriter, r *http.Request) (admin.ReplayOptions, *Problem) {
	opts := admin.ReplayOptions{Masker: masker}
	if r.ContentLength == 0 || (r.ContentLength < 0 && r.Header.Get("Content-Type") == "") {
		return opts, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return opts, problem(http.StatusUnsupportedMediaType, CodeUnsupportedType, "the body must be application/json")
	}
	var req ReplayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReplayBody))
	dec.DisallowUnknownFields()
	var mbe *http.MaxBytesError
	if err := dec.Decode(&req); errors.As(err, &mbe) {
		return opts, problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "a replay request is at most "+strconv.Itoa(maxReplayBody)+" bytes")
	} else if err != nil {
		return opts, invalidField("payload", "must be a JSON object with force (boolean) and ttl_ms (integer) only")
	}
	maxTTL := events.MaxTTL.Milliseconds()
	switch {
	case req.Force && req.TTLMillis == 0:
		return opts, invalidField("ttl_ms", "required with force: the new lifetime of the replayed command, 1-"+strconv.FormatInt(maxTTL, 10))
	case !req.Force && req.TTLMillis != 0:
		return opts, invalidField("ttl_ms", "applies only with force (otherwise the original deadline is kept)")
	case req.Force && (req.TTLMillis < 1 || req.TTLMillis > maxTTL):
		return opts, invalidField("ttl_ms", "must be between 1 and "+strconv.FormatInt(maxTTL, 10))
	}
	opts.Force, opts.TTL = req.Force, time.Duration(req.TTLMillis)*time.Millisecond
	return opts, nil
}

func invalidField(field, rule string) *Problem {
	p := problem(http.StatusUnprocessableEntity, CodeValidation, field+": "+rule)
	p.Field, p.Rule = field, rule
	return p
}

func (s *Server) postReplay(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	opts, p := replayOptions(w, r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	d, ok := s.deadLetter(w, r, tok)
	if !ok {
		return
	}
	out, err := s.admin.Replay(r.Context(), d, opts)
	var refused *admin.ReplayRefusedError
	switch {
	case errors.As(err, &refused):
		p := problem(http.StatusConflict, CodeReplayRefused, refused.Detail)
		p.Reason = refused.Reason
		writeProblem(w, p)
		return
	case err != nil:
		internalError(w, r, err)
		return
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	writeJSON(w, http.StatusOK, Replayed{Seq: d.Seq, CommandID: d.CommandID, MsgID: out.MsgID,
		Deadline: out.Deadline, Duplicate: out.Duplicate, Notes: out.Notes})
}
