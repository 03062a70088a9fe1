package gatewaysim

import (
	"net/http"
	"time"
)

// The call-data queries (CN/EN:cec_07_1261 callinfo, cec_07_1266
// callinfobycallid, cec_07_1267 holdlist). The result fields are the
// documented ones [C]; which call each query reports is inferred [I]:
//
//   - callinfo reports the agent's current call: its last call when that
//     is not held. Without one it reports the most recently ended call,
//     with "endtime" set, unless isNoContainLastCall=true (the parameter's
//     name and Huawei's C# demo read true as "do not contain the last
//     call"; the parameter table reads it the other way).
//   - callinfobycallid reports any call of the agent, held or not.
//   - holdlist lists the held calls, oldest first; without one it answers
//     400-003 (the C# demo's meaning: no call information when querying
//     held calls).
//
// "No call" is retcode "0" without a result (the C# demo tests result ==
// null). Latency applies, and the fault plan too when [Faults.Queries].

func (s *Sim) handleCallInfo(w http.ResponseWriter, r *http.Request) {
	noLast := r.URL.Query().Get("isNoContainLastCall") == "true"
	s.serveQuery(w, r, func(a *agent) reply {
		if c := active(a); c != nil {
			return reply{retcode: rcOK, result: s.callResult(c)}
		}
		if !noLast && a.lastEnded != nil {
			return reply{retcode: rcOK, result: s.callResult(a.lastEnded)}
		}
		return reply{retcode: rcOK}
	})
}

func (s *Sim) handleCallInfoByCallID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("callid")
	if len(id) > 64 {
		s.write(w, r, reply{retcode: rcBadParam})
		return
	}
	s.serveQuery(w, r, func(a *agent) reply {
		if c := findCall(a, id); c != nil {
			return reply{retcode: rcOK, result: s.callResult(c)}
		}
		return reply{retcode: rcOK}
	})
}

func (s *Sim) handleHoldList(w http.ResponseWriter, r *http.Request) {
	s.serveQuery(w, r, func(a *agent) reply {
		var held []map[string]any
		for _, c := range a.calls {
			if c.held {
				held = append(held, s.callResult(c))
			}
		}
		if len(held) == 0 {
			return reply{retcode: rcNoHeldCall}
		}
		return reply{retcode: rcOK, result: held}
	})
}

// serveQuery checks the agent ID and the Guid of a call-data query, then
// answers with fn inside the agent's in-flight window.
func (s *Sim) serveQuery(w http.ResponseWriter, r *http.Request, fn func(a *agent) reply) {
	id, ok := parseAgentID(r.PathValue("agentid"))
	if !ok {
		s.write(w, r, reply{retcode: rcBadParam})
		return
	}
	guid := r.Header.Get("Guid")
	s.write(w, r, s.guarded(id, func() reply { return s.query(id, guid, fn) }))
}

// query authenticates, counts the query, draws a fault when the plan
// covers queries, and answers with fn. A *_after fault answers like its
// plain kind once fn ran (a query executes nothing).
func (s *Sim) query(id int, guid string, fn func(a *agent) reply) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rc := s.authLocked(id, guid)
	if rc != "" {
		return reply{retcode: rc}
	}
	s.queries.Add(1)
	var fault Fault
	var code string
	if s.faults.coversQueries() {
		fault, code = s.faults.roll()
	}
	switch fault {
	case Fault5xx, FaultReset, FaultTimeout:
		return reply{fault: fault}
	case FaultRetCode:
		return reply{retcode: code, fault: fault}
	}
	rep := fn(a)
	rep.fault = fault
	return rep
}

// callResult is a call as the call-data queries report it: the documented
// fields [C], numbers as strings (the C# demo reads them as strings; the
// doc types caller and called int) [I].
func (s *Sim) callResult(c *call) map[string]any {
	var end int64
	if !c.ended.IsZero() {
		end = c.ended.UnixMilli()
	}
	return map[string]any{
		"callfeature": c.feature, "callid": c.id, "caller": c.caller, "called": c.called,
		"callskill": "", "callskillid": 0, "orgicallednum": "", "calldata": "",
		"begintime": c.began.UnixMilli(), "endtime": end,
		"userPriority": 0, "trunkNo": 0, "logontimes": int64(s.now().Sub(c.began) / time.Second),
		"mediaType": 5, "mediaAbility": 1,
	}
}
