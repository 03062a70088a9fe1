package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// CallInfo is the agent's last call as the gateway's call-data queries
// report it. The zero value means the agent has no call.
//
// Facts are marked as in cc-gateway.md: [C] confirmed by Huawei's
// documentation (CN/EN:cec_07_1261 callinfo, cec_07_1266 callinfobycallid,
// cec_07_1267 holdlist), [C-code] only by Huawei's C# demo
// (CloudIPCC_QuickAgentDemo_CSharp), [I] inferred.
type CallInfo struct {
	// CallID is the gateway's call ID, as the agent events carry it
	// ("callid" of the result [C]).
	CallID string
	// Parties are the numbers in the call besides the agent's own work
	// number: the result's caller and called [C], without the agent ID and
	// without duplicates. The answer lists no other party [C: no such field
	// is documented], so the other parties of a conference are missing, and
	// for an inbound call "called" may be the hotline's access code rather
	// than a party [I]. A number not in Parties may still be in the call;
	// a number in Parties is in it unless it is that access code.
	Parties []string
	// Caller and Called are the result's caller and called as sent
	// (a JSON string or number) [C].
	Caller, Called string
	// Feature is the call type ("callfeature" [C]): 0 normal inbound,
	// 6 internal, 7 normal outbound [C: EN:cec_07_4245], 51 two-party and
	// 52 three-party inner help [C-code]. -1 when the answer has none.
	Feature int
	// Held reports that the call is held. The queries carry no hold flag
	// [C: none documented]; Held is true when the agent has no current call
	// and its last call was found in the hold list (the held call is then
	// the last call, cc-gateway.md section 6) [I].
	Held bool
	// Began is when the call was answered ("begintime", ms since the Unix
	// epoch [C]), zero when the answer does not say.
	Began time.Time
}

// Retcodes that mean "no call" to a call-data query. The documented
// answer for an agent without a call is retcode "0" without a result
// [C-code: the C# demo tests result == null]; these codes are accepted as
// the same answer [I: their meanings are [C-code], their use here is not].
var (
	noCallRetCodes     = map[string]bool{"200-026": true} // no call exists
	noHeldCallRetCodes = map[string]bool{"400-003": true, "200-006": true}
)

// CallInfo returns the agent's last call, in at most two requests made one
// after the other (never at once):
//
//  1. GET {BaseURL}/agentgateway/resource/calldata/{agentID}/callinfo?isNoContainLastCall=true,
//     the agent's current call [C]. The parameter asks the gateway not to
//     report the previous call when there is none: the C# demo and the
//     parameter's name say true means "do not contain the last call"
//     [C-code], the parameter table says the opposite [C]; so an answered
//     call with an end time ("endtime" > 0) is taken as ended too [I].
//  2. Only when there is no current call: GET .../calldata/{agentID}/holdlist
//     [C], whose last entry is then the agent's last call, reported with
//     Held set [I: the order of the list is not documented].
//
// An agent with no call gives the zero CallInfo and a nil error. agentID
// must be 101..59999 and guid a valid header value, otherwise no request
// is sent. Each request is bounded by RequestTimeout (or ctx's earlier
// deadline). Errors are [*Error] values (Op "callinfo") classified by
// [Classify]; a result that is not an object, a list or null wraps
// [ErrMalformedResponse].
func (c *Client) CallInfo(ctx context.Context, agentID int, guid string) (CallInfo, error) {
	const op = "callinfo"
	if err := checkAgentID(op, agentID); err != nil {
		return CallInfo{}, err
	}
	if err := checkGUID(op, guid); err != nil {
		return CallInfo{}, err
	}
	base := agentPath("calldata", agentID)
	ci, found, err := c.queryCall(ctx, op, base+"/callinfo?isNoContainLastCall=true", guid, agentID, "", noCallRetCodes)
	if err != nil || found {
		return ci, err
	}
	ci, found, err = c.queryCall(ctx, op, base+"/holdlist", guid, agentID, "", noHeldCallRetCodes)
	ci.Held = found
	return ci, err
}

// CallInfoByCallID returns the call with the given ID of the agent:
// GET {BaseURL}/agentgateway/resource/calldata/{agentID}/callinfobycallid/{callID}
// [C]. The result may be one object [C-code] or a list [C: the CN page
// types it "list"]; from a list the entry with callID is taken. A call the
// gateway does not know (ended, another agent's) gives the zero CallInfo
// and a nil error [I]. Held is always false: the answer has no hold flag.
//
// callID must be 1..64 ASCII letters, digits, '.', '_' or '-' (gateway
// call IDs look like "1456403549-15"); otherwise no request is sent.
// Errors are [*Error] values (Op "callinfobycallid"), as for [Client.CallInfo].
func (c *Client) CallInfoByCallID(ctx context.Context, agentID int, callID, guid string) (CallInfo, error) {
	const op = "callinfobycallid"
	if err := checkAgentID(op, agentID); err != nil {
		return CallInfo{}, err
	}
	if err := checkCallID(op, callID); err != nil {
		return CallInfo{}, err
	}
	if err := checkGUID(op, guid); err != nil {
		return CallInfo{}, err
	}
	path := agentPath("calldata", agentID) + "/callinfobycallid/" + callID
	ci, _, err := c.queryCall(ctx, op, path, guid, agentID, callID, noCallRetCodes)
	return ci, err
}

// queryCall sends one call-data GET and parses its result. It reports
// found = false, and no error, when the answer says there is no call: no
// result, an empty one, an ended call, or a retcode of noCall.
func (c *Client) queryCall(ctx context.Context, op, path, guid string, agentID int, callID string, noCall map[string]bool) (CallInfo, bool, error) {
	r, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, guid: guid, timeout: c.reqTimeout, secrets: []string{guid}})
	if err != nil {
		if noCall[RetCodeOf(err)] {
			return CallInfo{}, false, nil
		}
		return CallInfo{}, false, err
	}
	ci, found, perr := parseCallResult(r.env.Result, strconv.Itoa(agentID), callID)
	if perr != nil {
		return CallInfo{}, false, &Error{Op: op, StatusCode: http.StatusOK, RetCode: string(r.env.RetCode), Err: perr}
	}
	return ci, found, nil
}

// checkCallID reports a call ID that could not be put in a path safely.
func checkCallID(op, id string) error {
	if len(id) == 0 || len(id) > maxCallIDLen {
		return invalid(op, "call id: must be 1..%d ASCII letters, digits, '.', '_' or '-'", maxCallIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !callIDByte(id[i]) {
			return invalid(op, "call id: must be 1..%d ASCII letters, digits, '.', '_' or '-'", maxCallIDLen)
		}
	}
	return nil
}

func callIDByte(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-' || b == '_' || b == '.'
}

// errNoCallID is the cause of a result whose call has no usable ID.
var errNoCallID = errors.New("call without a callid")
