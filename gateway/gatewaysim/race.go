package gatewaysim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"
)

// CallState is a snapshot of one call of an agent ([Sim.Calls],
// GET /simulator/agents/{id}/calls).
type CallState struct {
	CallID     string    `json:"call_id"`
	Customer   string    `json:"customer,omitempty"` // the party a redial calls back
	Parties    []string  `json:"parties"`            // numbers besides the agent
	Held       bool      `json:"held"`
	Feature    int       `json:"feature"` // 0 inbound, 7 outbound, 51/52 inner help
	Began      time.Time `json:"began"`
	Generation int       `json:"generation"` // the customer's call generation (1 = first); 0 for help calls
	Redial     bool      `json:"redial"`
	Helper     bool      `json:"helper,omitempty"` // the helper's side of an inner-help call
}

// Calls returns the agent's calls, oldest first; the last one is the
// agent's last call. Nil for an unknown agent or one without calls.
func (s *Sim) Calls(agentID int) []CallState {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[agentID]
	if a == nil {
		return nil
	}
	var out []CallState
	for _, c := range a.calls {
		out = append(out, CallState{
			CallID: c.id, Customer: c.customer, Parties: slices.Clone(c.parties), Held: c.held,
			Feature: c.feature, Began: c.began, Generation: c.gen, Redial: c.redial, Helper: c.helper,
		})
	}
	return out
}

// redialDelay is the JSON body of GET and PUT /simulator/redial.
type redialDelay struct {
	AfterMS int64 `json:"after_ms"` // the automatic redial delay in ms; 0 = off
}

// raceRoutes mounts the admin routes that stage races of a release with
// the end of a call and the customer's redial (see the package doc).
func (s *Sim) raceRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /simulator/agents/{id}/calls", s.adminAgent(func(id int, _ []byte) (any, error) {
		return nonNil(s.Calls(id)), nil
	}))
	m.HandleFunc("POST /simulator/agents/{id}/endcall", s.adminAgent(s.adminEndCall))
	m.HandleFunc("POST /simulator/agents/{id}/redial", s.adminAgent(s.adminRedial))
	m.HandleFunc("POST /simulator/agents/{id}/callout", s.adminAgent(s.adminCallout))
	m.HandleFunc("GET /simulator/redial", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, redialDelay{AfterMS: s.RedialAfter().Milliseconds()})
	})
	m.HandleFunc("PUT /simulator/redial", s.adminRedialDelay)
}

func nonNil(c []CallState) []CallState {
	if c == nil {
		return []CallState{}
	}
	return c
}

func (s *Sim) adminEndCall(id int, body []byte) (any, error) {
	var in struct {
		CallID string `json:"callid"`
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	ended, err := s.EndCall(id, in.CallID)
	return map[string]string{"callid": ended}, err
}

func (s *Sim) adminRedial(id int, body []byte) (any, error) {
	var in struct {
		Customer string `json:"customer"`
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	callID, err := s.Redial(id, in.Customer)
	return map[string]string{"callid": callID}, err
}

func (s *Sim) adminCallout(id int, body []byte) (any, error) {
	var in calloutBody
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	callID, err := s.Callout(id, in.Called, in.Caller)
	return map[string]string{"callid": callID}, err
}

func (s *Sim) adminRedialDelay(w http.ResponseWriter, r *http.Request) {
	var in redialDelay
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if in.AfterMS < 0 {
		writeError(w, http.StatusBadRequest, errors.New("gatewaysim: redial: after_ms must not be negative"))
		return
	}
	s.SetRedialAfter(time.Duration(in.AfterMS) * time.Millisecond)
	writeJSON(w, http.StatusOK, redialDelay{AfterMS: s.RedialAfter().Milliseconds()})
}
