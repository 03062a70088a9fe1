package api

import (
	"net/http"
	"strconv"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

// AgentList is the body of GET /v1/agents: the agents in the token's
// range, by agent ID.
type AgentList struct {
	Agents []admin.Agent `json:"agents"`
}

func (s *Server) getAgents(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	all, err := s.admin.Agents(r.Context())
	if err != nil {
		internalError(w, r, err)
		return
	}
	out := AgentList{Agents: []admin.Agent{}}
	for _, a := range all {
		if tok.Agents.Contains(a.AgentID) {
			out.Agents = append(out.Agents, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < events.AgentIDMin || id > events.AgentIDMax {
		notFound(w, "agent")
		return
	}
	if !tok.Agents.Contains(id) {
		writeProblem(w, problem(http.StatusForbidden, CodeForbidden, "agent "+strconv.Itoa(id)+" is outside the token's agent range"))
		return
	}
	all, err := s.admin.Agents(r.Context())
	if err != nil {
		internalError(w, r, err)
		return
	}
	for _, a := range all {
		if a.AgentID == id {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	notFound(w, "agent")
}
