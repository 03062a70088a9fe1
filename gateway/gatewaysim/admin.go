package gatewaysim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// adminRoutes mounts the simulator-only admin API (see the package doc).
// Replies are plain JSON; errors are {"error": "..."} with a 4xx status.
func (s *Sim) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /simulator/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	m.HandleFunc("GET /simulator/disconnects", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Disconnects())
	})
	m.HandleFunc("GET /simulator/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	m.HandleFunc("PUT /simulator/faults", s.adminFaults)
	m.HandleFunc("POST /simulator/agents/{id}/signin", s.adminAgent(s.adminSignIn))
	m.HandleFunc("POST /simulator/agents/{id}/calls", s.adminAgent(s.adminCall))
	m.HandleFunc("POST /simulator/agents/{id}/hangup", s.adminAgent(s.adminHangup))
	m.HandleFunc("POST /simulator/agents/{id}/hold", s.adminAgent(func(id int, _ []byte) (any, error) {
		return struct{}{}, s.Hold(id)
	}))
	m.HandleFunc("POST /simulator/agents/{id}/confjoin", s.adminAgent(func(id int, _ []byte) (any, error) {
		return struct{}{}, s.ConfJoin(id)
	}))
	m.HandleFunc("POST /simulator/agents/{id}/innerhelp", s.adminAgent(s.adminInnerHelp))
	s.raceRoutes(m)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Sim) adminFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := f.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

// errBadBody marks a request body the admin API cannot use.
var errBadBody = errors.New("gatewaysim: bad request body")

// adminAgent adapts fn, which gets the agent ID and the raw body, to a
// handler. Errors map to 400 (bad input), 404 (unknown agent) or 409.
func (s *Sim) adminAgent(fn func(id int, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, errors.New("gatewaysim: bad agent id"))
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		v, err := fn(id, body)
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, v)
		case errors.Is(err, errBadBody), errors.Is(err, ErrBadNumber):
			writeError(w, http.StatusBadRequest, err)
		case errors.Is(err, ErrUnknownAgent):
			writeError(w, http.StatusNotFound, err)
		default:
			writeError(w, http.StatusConflict, err)
		}
	}
}

// decodeBody decodes a JSON body into v; an empty body leaves v as is.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errors.Join(errBadBody, err)
	}
	return nil
}

func (s *Sim) adminSignIn(id int, _ []byte) (any, error) {
	guid, err := s.SignIn(id)
	return map[string]string{"guid": guid}, err
}

// adminCall signs the agent in when needed, then starts a call.
func (s *Sim) adminCall(id int, body []byte) (any, error) {
	var in struct {
		Customer string `json:"customer"`
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if !s.isSignedIn(id) {
		if _, err := s.SignIn(id); err != nil {
			return nil, err
		}
	}
	callID, err := s.StartCall(id, in.Customer)
	return map[string]string{"callid": callID}, err
}

func (s *Sim) adminHangup(id int, body []byte) (any, error) {
	var in struct {
		Number string `json:"number"`
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	return map[string]string{"number": in.Number}, s.CustomerHangup(id, in.Number)
}

func (s *Sim) adminInnerHelp(id int, body []byte) (any, error) {
	var in struct {
		Helper     int  `json:"helper"`
		ThreeParty bool `json:"three_party"`
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	return struct{}{}, s.InnerHelp(id, in.Helper, in.ThreeParty)
}

func (s *Sim) isSignedIn(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[id]
	if a != nil {
		s.expireIdleLocked(a, s.now())
	}
	return a != nil && a.signedIn
}
