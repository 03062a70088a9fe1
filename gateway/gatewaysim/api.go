package gatewaysim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// Prefix is the path prefix of the gateway API.
const Prefix = "/agentgateway/resource"

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("PUT "+Prefix+"/onlineagent/{agentid}", s.handleSignIn(false))
	m.HandleFunc("PUT "+Prefix+"/onlineagent/{agentid}/forcelogin", s.handleSignIn(true))
	m.HandleFunc("DELETE "+Prefix+"/onlineagent/{agentid}/logout", s.handleSignOut(false))
	m.HandleFunc("DELETE "+Prefix+"/onlineagent/{agentid}/forcelogout", s.handleSignOut(true))
	m.HandleFunc("GET "+Prefix+"/agentevent/{agentid}", s.handlePoll)
	m.HandleFunc("POST "+Prefix+"/voicecall/{agentid}/disconnect/{number}", s.handleDisconnect)
	m.HandleFunc("PUT "+Prefix+"/voicecall/{agentid}/callout", s.handleCallout)
	m.HandleFunc("GET "+Prefix+"/calldata/{agentid}/callinfo", s.handleCallInfo)
	m.HandleFunc("GET "+Prefix+"/calldata/{agentid}/callinfobycallid/{callid}", s.handleCallInfoByCallID)
	m.HandleFunc("GET "+Prefix+"/calldata/{agentid}/holdlist", s.handleHoldList)
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, envelope{Message: messages[rcBadParam], RetCode: rcBadParam})
	})
	s.adminRoutes(m)
	s.mux = m
}

// parseAgentID accepts 101..59999 written in digits only.
func parseAgentID(v string) (int, bool) {
	if !digits(v) || len(v) > 5 {
		return 0, false
	}
	id, err := strconv.Atoi(v)
	return id, err == nil && id >= 101 && id <= 59999
}

// validNumber accepts a phone number of 1 to 24 digits.
func validNumber(v string) bool { return len(v) <= 24 && digits(v) }

func digits(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range []byte(v) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// signInBody is the part of the sign-in body the simulator reads; other
// fields are ignored.
type signInBody struct {
	Password string `json:"password"`
	PhoneNum string `json:"phonenum"` // the agent's soft-phone number, its "own number"
}

// readSignIn reads the sign-in body; it must be a JSON object.
func readSignIn(r *http.Request) (signInBody, bool) {
	var b signInBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || json.Unmarshal(data, &b) != nil {
		return b, false
	}
	return b, true
}

func (s *Sim) handleSignIn(force bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := parseAgentID(r.PathValue("agentid"))
		if !ok {
			s.write(w, r, reply{retcode: rcBadParam})
			return
		}
		body, ok := readSignIn(r)
		s.write(w, r, s.guarded(id, func() reply {
			if !ok {
				return reply{retcode: rcSignInParam}
			}
			return s.signIn(id, body, force)
		}))
	}
}

// signIn handles PUT onlineagent/{id}[/forcelogin]. Unknown agents are
// created with the given password. The body's phonenum becomes the agent's
// own number (see [Sim.InnerHelp] and the disconnect rules).
func (s *Sim) signIn(id int, body signInBody, force bool) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agentLocked(id, body.Password)
	s.expireIdleLocked(a, s.now())
	if a.password != "" && a.password != body.Password {
		return reply{retcode: rcBadPassword}
	}
	if a.signedIn && !force {
		return reply{retcode: rcAlreadyIn}
	}
	guid := s.signInLocked(a)
	if validNumber(body.PhoneNum) {
		a.phone = body.PhoneNum
	} else {
		a.phone = ""
	}
	return reply{retcode: rcOK, setGUID: setGUIDPrefix + guid, result: map[string]any{
		"vdnid": 1, "workno": a.workNo, "loginTime": a.loginTime.UnixMilli(),
		"serverName": "AgentGateway", "mediatype": "TTF",
		"isForceChange": false, "timeRemaining": 180,
	}}
}

// handleSignOut handles logout and forcelogout. A logout while the agent
// has a call (active or held) is refused with 100-010 (EN:cec_07_1219: no
// sign-out while talking [C]); forcelogout signs out at once and releases
// the calls [I].
func (s *Sim) handleSignOut(force bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := parseAgentID(r.PathValue("agentid"))
		if !ok {
			s.write(w, r, reply{retcode: rcBadParam})
			return
		}
		guid := r.Header.Get("Guid")
		s.write(w, r, s.guarded(id, func() reply { return s.signOut(id, guid, force) }))
	}
}

func (s *Sim) signOut(id int, guid string, force bool) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rc := s.authLocked(id, guid)
	if rc != "" {
		return reply{retcode: rc}
	}
	if !force && len(a.calls) > 0 {
		return reply{retcode: rcLogoutState}
	}
	s.signOutLocked(a)
	return reply{retcode: rcOK, result: struct{}{}}
}

func (s *Sim) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	idText, number := r.PathValue("agentid"), r.PathValue("number")
	id, okID := parseAgentID(idText)
	idx := s.recordArrival(idText, number, r.Header.Get("traceparent"))
	rep := reply{retcode: rcBadParam}
	if okID && validNumber(number) {
		guid := r.Header.Get("Guid")
		rep = s.guarded(id, func() reply { return s.disconnect(id, guid, number) })
	}
	s.recordOutcome(idx, rep)
	s.write(w, r, rep)
}

// disconnect checks the GUID, draws a fault, then applies the last-call
// rule.
func (s *Sim) disconnect(id int, guid, number string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rc := s.authLocked(id, guid)
	if rc != "" {
		return reply{retcode: rc}
	}
	fault, code := s.faults.roll()
	switch fault {
	case Fault5xx, FaultReset, FaultTimeout:
		return reply{fault: fault}
	case FaultRetCode:
		return reply{retcode: code, fault: fault}
	}
	rc, c := s.disconnectLocked(a, number)
	rep := reply{retcode: rc, fault: fault, executed: c != nil}
	if c != nil {
		s.executed.Add(1)
		if c.redial {
			s.onRedial.Add(1)
		}
		rep.result = struct{}{}
		rep.released = callRef{id: c.id, gen: c.gen, redial: c.redial, began: c.began, last: c.becameLast()}
	}
	return rep
}
