package api

import (
	"errors"
	"net/http"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/events"
)

// Command is the body of GET /v1/commands/{id}.
type Command struct {
	CommandID string `json:"command_id"`
	// LedgerState is the ledger record's state, "started" (a worker is
	// executing it) or "done"; "published" for a command this API
	// published that no worker has taken yet; "none" without a record
	// (expired, or the result was found in the results stream only).
	LedgerState string `json:"ledger_state"`
	// Result is the outcome, nil while there is none.
	Result *events.Result `json:"result,omitempty"`
	// Attempts is the gateway requests sent (0 without a result).
	Attempts int `json:"attempts"`
	// Pending: an accepted command still awaiting its release event.
	Pending bool `json:"pending"`
	// Confirmation of an accepted command, once the poller decided it.
	Confirmation *events.Confirmation `json:"confirmation,omitempty"`
}

// notFound is the 404 of every lookup: it does not say whether the thing
// exists outside the token's agent range.
func notFound(w http.ResponseWriter, what string) {
	writeProblem(w, problem(http.StatusNotFound, CodeNotFound, "no such "+what))
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request, tok *TokenEntry) {
	id := r.PathValue("id")
	if !validID(id) {
		notFound(w, "command")
		return
	}
	st, err := s.admin.CommandStatus(r.Context(), id, s.since(s.cfg.StatusWindow))
	if errors.Is(err, admin.ErrNoCommand) {
		s.unstarted(w, r, tok, id)
		return
	}
	if err != nil {
		internalError(w, r, err)
		return
	}
	res := st.Result()
	if tok.Agents != nil && (res == nil || !tok.Agents.Contains(res.AgentID)) {
		notFound(w, "command") // its agent is unknown or outside the range
		return
	}
	writeJSON(w, http.StatusOK, commandView(st))
}

func commandView(st *admin.CommandStatus) Command {
	c := Command{CommandID: st.CommandID, LedgerState: "none", Pending: st.Pending != nil}
	if st.Ledger != nil {
		c.LedgerState = st.Ledger.State
	}
	if res := st.Result(); res != nil {
		c.Result = maskResult(*res)
		c.Attempts = res.Attempts
	}
	if st.Confirmation != nil {
		c.Confirmation = maskConfirmation(st.Confirmation.Value)
	}
	return c
}

// unstarted answers for a command without a ledger record or a result:
// "published" when this API published it, else 404.
func (s *Server) unstarted(w http.ResponseWriter, r *http.Request, tok *TokenEntry, id string) {
	p, err := s.idem.wasPublished(r.Context(), id)
	switch {
	case err != nil:
		internalError(w, r, err)
	case p == nil || !tok.Agents.Contains(p.AgentID):
		notFound(w, "command")
	default:
		writeJSON(w, http.StatusOK, Command{CommandID: id, LedgerState: "published"})
	}
}
