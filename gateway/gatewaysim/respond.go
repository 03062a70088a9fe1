package gatewaysim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"time"
)

// Retcodes the simulator answers with.
const (
	rcOK            = "0"
	rcBadParam      = "000-002"
	rcNoPermission  = "000-003"
	rcRepeated      = "000-007"
	rcSignInParam   = "100-001"
	rcAlreadyIn     = "100-002"
	rcBadPassword   = "100-004"
	rcNotSignedIn   = "100-006"
	rcInternal      = "100-007"
	rcLogoutState   = "100-010"
	rcBadCalled     = "200-001"
	rcNoCall        = "200-023"
	rcNotInCall     = "200-024"
	rcNotInLastCall = "200-204"
	rcNoHeldCall    = "400-003"
)

var messages = map[string]string{
	rcOK:            "success",
	rcBadParam:      "invalid url or parameter",
	rcNoPermission:  "no permission: guid missing or invalid",
	rcRepeated:      "interface invoked repeatedly",
	rcSignInParam:   "sign-in parameter empty or invalid",
	rcAlreadyIn:     "agent already signed in",
	rcBadPassword:   "wrong user name or password",
	rcNotSignedIn:   "agent not signed in",
	rcInternal:      "exception while running the operation",
	rcLogoutState:   "agent state does not allow sign-out",
	rcBadCalled:     "the number dialed by the agent is incorrect",
	rcNoCall:        "no call exists when releasing the specified number",
	rcNotInCall:     "the number does not exist in the call",
	rcNotInLastCall: "the user is not in the last call",
	rcNoHeldCall:    "no call information exists when the agent queries held calls",
}

const setGUIDPrefix = "JSESSIONID="

// faultHold bounds how long a timeout fault holds a request.
const faultHold = 30 * time.Second

// reply is the outcome of a gateway request, computed inside the in-flight
// window and written after it.
type reply struct {
	retcode  string  // "" with a transport fault: nothing was answered
	result   any     // omitted when nil
	event    *Event  // poll replies only
	poll     bool    // a poll reply: success carries an empty message
	setGUID  string  // Set-GUID header value
	fault    Fault   // injected fault, if any
	executed bool    // a disconnect released a party
	released callRef // the call a disconnect released the party from
}

// callRef identifies the call a disconnect released a party from.
type callRef struct {
	id     string
	gen    int
	redial bool
	began  time.Time
	last   time.Time // when it became the agent's last call
}

type envelope struct {
	Message string `json:"message"`
	RetCode string `json:"retcode"`
	Result  any    `json:"result,omitempty"`
	Event   *Event `json:"event,omitempty"`
}

// write sends rep, or applies its transport fault.
func (s *Sim) write(w http.ResponseWriter, r *http.Request, rep reply) {
	switch rep.fault {
	case Fault5xx:
		write503(w)
	case FaultReset, FaultResetAfter:
		abort(w)
	case FaultTimeout, FaultTimeoutAfter:
		s.hold(r.Context())
		abort(w)
	default:
		if rep.setGUID != "" {
			w.Header().Set("Set-GUID", rep.setGUID)
		}
		msg := messages[rep.retcode]
		if rep.poll && rep.retcode == rcOK {
			msg = ""
		}
		writeJSON(w, http.StatusOK, envelope{Message: msg, RetCode: rep.retcode, Result: rep.result, Event: rep.event})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone
}

func write503(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Retry-After", "0")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("<html><body><h1>503 Service Unavailable</h1></body></html>\n"))
}

// hold blocks until the client gives up, faultHold passes or the
// simulator closes.
func (s *Sim) hold(ctx context.Context) {
	t := time.NewTimer(faultHold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-s.done:
	}
}

// abort drops the connection without a response. Over HTTP/1 the
// connection is hijacked and reset (SO_LINGER 0); where hijacking is not
// possible (HTTP/2) the handler panics with http.ErrAbortHandler, which
// resets the stream.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close() // skips the TLS close_notify: a hard reset
}
