package gateway

import (
	"fmt"
	"strconv"
)

// Limits of the values that go into a request's path and headers.
const (
	minAgentID   = 101   // lowest agent ID (work number) the gateway accepts
	maxAgentID   = 59999 // highest agent ID of the disconnect page's range
	maxNumberLen = 24    // most digits of a disconnect number
	maxGUIDLen   = 256   // far above the ~50 bytes of a real GUID
)

// invalid returns the *Error of a request refused before it was sent. It
// wraps [ErrInvalidInput], so [Classify] returns [ClassPermanent].
func invalid(op, format string, args ...any) *Error {
	return &Error{Op: op, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)}
}

// checkAgentID reports an agent ID outside 101..59999.
func checkAgentID(op string, id int) error {
	if id < minAgentID || id > maxAgentID {
		return invalid(op, "agent id %d: must be %d..%d", id, minAgentID, maxAgentID)
	}
	return nil
}

// checkNumber reports a number that is not 1..24 ASCII digits.
// The number itself is not repeated in the error.
func checkNumber(op, number string) error {
	if len(number) < 1 || len(number) > maxNumberLen {
		return invalid(op, "number: must be 1..%d ASCII digits", maxNumberLen)
	}
	for i := 0; i < len(number); i++ {
		if number[i] < '0' || number[i] > '9' {
			return invalid(op, "number: must be 1..%d ASCII digits", maxNumberLen)
		}
	}
	return nil
}

// checkGUID reports a GUID that could not be sent as one header value:
// empty, too long, or holding anything but printable ASCII without spaces
// (so CR/LF header injection is impossible). The GUID is not repeated.
func checkGUID(op, guid string) error {
	if !validGUID(guid) {
		return invalid(op, "guid: must be 1..%d printable ASCII characters without spaces", maxGUIDLen)
	}
	return nil
}

// validGUID reports whether guid passes [checkGUID].
func validGUID(guid string) bool {
	if len(guid) == 0 || len(guid) > maxGUIDLen {
		return false
	}
	for i := 0; i < len(guid); i++ {
		if guid[i] <= ' ' || guid[i] > '~' {
			return false
		}
	}
	return true
}

// agentPath returns "<group>/<agentID>" with the ID formatted by
// [strconv.Itoa]; the ID must have passed [checkAgentID].
func agentPath(group string, agentID int) string {
	return group + "/" + strconv.Itoa(agentID)
}
