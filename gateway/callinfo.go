package gateway

import (
	"context"
	"errors"
	"time"
)

// CallInfo is the agent's last call as the gateway's call-info query
// reports it. The zero value means the agent has no call.
type CallInfo struct {
	// CallID is the gateway's call ID, as the agent events carry it.
	CallID string
	// Parties are the numbers in the call besides the agent's own work
	// number (caller, called, the other parties of a conference).
	Parties []string
	// Held reports that the call is held.
	Held bool
	// Began is when the call began, zero when the answer does not say.
	Began time.Time
}

// CallInfo queries GET {BaseURL}/agentgateway/resource/calldata/{agentID}/callinfo:
// the agent's current call. An agent with no call gives the zero CallInfo
// and a nil error. Errors are *[Error] like every other operation.
//
// TODO(issue 13): implemented by the simulator/gateway work.
func (c *Client) CallInfo(ctx context.Context, agentID int, guid string) (CallInfo, error) {
	return CallInfo{}, errors.ErrUnsupported
}
