package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxCallIDLen bounds a call ID taken from or put into a request.
const maxCallIDLen = 64

// parseCallResult reads the "result" of a call-data query: one call
// object, a list of them, or nothing. From a list it takes the entry with
// callID, or the last entry when callID is "" (holdlist). found is false
// for no result, null, "", {} or [], and for a call that has ended.
// agentNo is removed from the parties.
//
// Keys are matched without regard to case ("callId", "CALLID") and values
// may be JSON strings or numbers [I: gateway versions differ, as for the
// events]. A field of another type is ignored, except a callid that is
// missing while caller or called is set: that result is malformed.
func parseCallResult(raw json.RawMessage, agentNo, callID string) (CallInfo, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return CallInfo{}, false, nil
	}
	var obj map[string]json.RawMessage
	switch raw[0] {
	case '{':
		if err := json.Unmarshal(raw, &obj); err != nil {
			return CallInfo{}, false, malformedResult(err)
		}
	case '[':
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return CallInfo{}, false, malformedResult(err)
		}
		obj = pickCall(list, callID)
	default:
		return CallInfo{}, false, malformedResult(errors.New("not an object or a list"))
	}
	return callFromFields(lowerKeys(obj), agentNo)
}

func malformedResult(err error) error {
	return fmt.Errorf("%w: result: %v", ErrMalformedResponse, err)
}

// pickCall returns the entry of list whose callid is callID, or the last
// entry when callID is ""; nil when there is none.
func pickCall(list []map[string]json.RawMessage, callID string) map[string]json.RawMessage {
	if callID == "" {
		if len(list) == 0 {
			return nil
		}
		return list[len(list)-1]
	}
	for _, e := range list {
		if field(lowerKeys(e), "callid") == callID {
			return e
		}
	}
	return nil
}

// lowerKeys returns m with lower-case keys; of keys that differ only in
// case, the one sorting first wins, so the choice is deterministic.
func lowerKeys(m map[string]json.RawMessage) map[string]json.RawMessage {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]json.RawMessage, len(m))
	for _, k := range keys {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; !dup {
			out[lk] = m[k]
		}
	}
	return out
}

// field returns the string or number literal of key in m, trimmed, or ""
// when it is absent, null or of another type.
func field(m map[string]json.RawMessage, key string) string {
	var t text
	if v, ok := m[key]; !ok || json.Unmarshal(v, &t) != nil {
		return ""
	}
	return strings.TrimSpace(string(t))
}

// callFromFields builds the CallInfo of one result object (lower-case keys).
func callFromFields(m map[string]json.RawMessage, agentNo string) (CallInfo, bool, error) {
	ci := CallInfo{
		CallID: field(m, "callid"),
		Caller: field(m, "caller"),
		Called: field(m, "called"),
		Began:  msTime(field(m, "begintime")),
	}
	switch {
	case ci.CallID == "" && ci.Caller == "" && ci.Called == "":
		return CallInfo{}, false, nil // {} or a list without the call
	case ci.CallID == "" || len(ci.CallID) > maxCallIDLen:
		return CallInfo{}, false, malformedResult(errNoCallID)
	case !msTime(field(m, "endtime")).IsZero():
		return CallInfo{}, false, nil // the previous call, already ended [I]
	}
	ci.Feature = -1
	if f, err := strconv.Atoi(field(m, "callfeature")); err == nil {
		ci.Feature = f
	}
	for _, p := range []string{ci.Caller, ci.Called} {
		if p != "" && p != agentNo && !slices.Contains(ci.Parties, p) {
			ci.Parties = append(ci.Parties, p)
		}
	}
	return ci, true, nil
}

// msTime parses milliseconds since the Unix epoch; "", "0", negative and
// unparsable values give the zero time.
func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
