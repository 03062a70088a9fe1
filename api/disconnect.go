package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/google/uuid"
)

// Accepted is the body of POST /v1/disconnects: 202 with only the
// command_id and where to follow it, 200 (Prefer: wait) with the result
// and, when it arrived in time, the confirmation.
type Accepted struct {
	CommandID    string               `json:"command_id"`
	Href         string               `json:"href"`
	Result       *events.Result       `json:"result,omitempty"`
	Confirmation *events.Confirmation `json:"confirmation,omitempty"`
}

// postDisconnect publishes a command: see the package doc and the OpenAPI
// document.
func (s *Server) postDisconnect(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	body, p := readCommandBody(w, r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	key, ok := idempotencyKey(r.Header)
	if !ok {
		writeProblem(w, problem(http.StatusBadRequest, CodeBadHeader, "Idempotency-Key must be one string of 1-64 letters, digits, '-' or '_'"))
		return
	}
	cmd, p := decodeCommand(body, key, tok)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if !tok.Agents.Contains(cmd.AgentID) {
		writeProblem(w, problem(http.StatusForbidden, CodeForbidden, "agent "+strconv.Itoa(cmd.AgentID)+" is outside the token's agent range"))
		return
	}
	if key == "" {
		s.submit(w, r, cmd)
		return
	}
	s.submitOnce(w, r, tok, key, body, cmd)
}

// readCommandBody reads a JSON body of at most events.MaxCommandSize
// bytes, or returns the 415 or 413 problem.
func readCommandBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, problem(http.StatusUnsupportedMediaType, CodeUnsupportedType, "the body must be application/json")
	}
	tooLarge := problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "a command is at most "+strconv.Itoa(events.MaxCommandSize)+" bytes of JSON")
	if r.ContentLength > events.MaxCommandSize {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxCommandSize))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, problem(http.StatusBadRequest, CodeValidation, "the body could not be read")
	}
	return body, nil
}

// decodeCommand decodes and validates the body as the NATS path does
// (events.DecodeDisconnect). Without a command_id in the body, the key
// (else a new UUID) is inserted as its first field, so that every other
// byte is decoded as sent. requested_by is the token's name.
func decodeCommand(body []byte, key string, tok *TokenEntry) (events.DisconnectCommand, *Problem) {
	if key == "" {
		key = uuid.NewString()
	}
	cmd, err := events.DecodeDisconnect(withCommandID(body, key))
	if err == nil {
		cmd.RequestedBy = tok.Name
		err = cmd.Validate()
	}
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		p := problem(http.StatusUnprocessableEntity, CodeValidation, ve.Error())
		p.Field, p.Rule = ve.Field, ve.Rule
		return cmd, p
	}
	if err != nil {
		return cmd, problem(http.StatusUnprocessableEntity, CodeValidation, err.Error())
	}
	return cmd, nil
}

// withCommandID returns body with "command_id": id as its first field
// when body is a JSON object without one, else body itself.
func withCommandID(body []byte, id string) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return body
	}
	if _, ok := obj["command_id"]; ok {
		return body
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	rest := bytes.TrimLeft(trimmed[1:], " \t\r\n")
	field, _ := json.Marshal(id)
	out := append([]byte(`{"command_id":`), field...)
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, trimmed[1:]...)
}

// submitOnce runs submit under the Idempotency-Key: the first response is
// stored and replayed to every retry with the same body.
func (s *Server) submitOnce(w http.ResponseWriter, r *http.Request, tok *TokenEntry, key string, body []byte, cmd events.DisconnectCommand) {
	c, first, err := s.idem.begin(r.Context(), tok.Name, key, body)
	switch {
	case errors.Is(err, errKeyReused):
		writeProblem(w, problem(http.StatusUnprocessableEntity, CodeKeyReused, "this Idempotency-Key was used with another body"))
		return
	case errors.Is(err, errKeyInFlight):
		writeProblem(w, problem(http.StatusConflict, CodeKeyInFlight, "a request with this Idempotency-Key is being processed; retry later"))
		return
	case err != nil:
		internalError(w, r, err)
		return
	case first != nil:
		writeStored(w, first)
		return
	}
	resp, err := s.execute(r, cmd)
	if err != nil {
		c.release(context.WithoutCancel(r.Context()))
		internalError(w, r, err)
		return
	}
	if err := c.finish(context.WithoutCancel(r.Context()), resp); err != nil {
		infoOf(r).err = err // answered all the same; a retry within staleAfter gets 409
	}
	writeStored(w, resp)
}

// submit publishes cmd and answers, without an Idempotency-Key.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, cmd events.DisconnectCommand) {
	resp, err := s.execute(r, cmd)
	if err != nil {
		internalError(w, r, err)
		return
	}
	writeStored(w, resp)
}

// execute publishes cmd and, with Prefer: wait, waits for its result and
// confirmation; it returns the response to send.
func (s *Server) execute(r *http.Request, cmd events.DisconnectCommand) (*storedResponse, error) {
	href := "/v1/commands/" + cmd.CommandID
	tp := r.Header.Get("traceparent")
	if !tracing.Valid(tp) {
		tp = ""
	}
	acc := Accepted{CommandID: cmd.CommandID, Href: href}
	n, wait := preferWait(r.Header)
	if !wait {
		if err := s.admin.Publish(r.Context(), cmd, tp); err != nil {
			return nil, err
		}
		return s.accepted(r, cmd, href)
	}
	n = appliedWait(n, s.cfg.MaxWait)
	done, err := s.await(r.Context(), cmd, tp, time.Duration(n)*time.Second, &acc)
	if err != nil {
		return nil, err
	}
	if !done {
		return s.accepted(r, cmd, href)
	}
	return respond(http.StatusOK, href, "wait="+strconv.Itoa(n), acc)
}

// accepted is the 202 of a published cmd; it marks cmd as published, so
// that its Location answers before a worker takes it (a failure to mark
// is logged, not the client's).
func (s *Server) accepted(r *http.Request, cmd events.DisconnectCommand, href string) (*storedResponse, error) {
	if err := s.idem.markPublished(context.WithoutCancel(r.Context()), cmd.CommandID, cmd.AgentID); err != nil {
		infoOf(r).err = err
	}
	return respond(http.StatusAccepted, href, "", Accepted{CommandID: cmd.CommandID, Href: href})
}

// await submits cmd and waits up to d for its result (then, for an
// accepted one, its confirmation, within the same d), filling acc. done
// is false when no result came in time.
func (s *Server) await(ctx context.Context, cmd events.DisconnectCommand, tp string, d time.Duration, acc *Accepted) (done bool, err error) {
	sub, err := s.admin.Submit(ctx, cmd, admin.SubmitOptions{Traceparent: tp, Confirm: true})
	if err != nil {
		return false, err
	}
	defer sub.Close()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res, _, err := sub.Result(wctx)
	if err != nil {
		return false, nil // not in time (or the client left): 202
	}
	acc.Result = maskResult(res)
	if res.Status == events.StatusAccepted {
		if conf, err := sub.Confirmation(wctx); err == nil {
			acc.Confirmation = maskConfirmation(conf)
		}
	}
	return true, nil
}

func respond(status int, href, applied string, body any) (*storedResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return &storedResponse{Status: status, Location: href, PreferenceApplied: applied, Body: b}, nil
}

var masker = admin.Masker{}

func maskResult(r events.Result) *events.Result {
	r.Reason, r.Number = masker.Text(r.Reason, r.Number), masker.Number(r.Number)
	return &r
}

func maskConfirmation(c events.Confirmation) *events.Confirmation {
	c.Number = masker.Number(c.Number)
	return &c
}

func validID(id string) bool { return events.ValidCommandID(id) }
