package gateway

import (
	"context"
	"net/http"
)

// Disconnect releases the party with the given number from the last call
// of the agent: POST {BaseURL}/agentgateway/resource/voicecall/{agentID}/disconnect/{number}
// with the Guid header and no body. The gateway then raises
// AgentEvent_Customer_Release and AgentEvent_Call_Release on the agent's
// event stream.
//
// agentID must be 101..59999, number 1..24 ASCII digits and guid printable
// ASCII without spaces; otherwise no request is sent and the [*Error]
// wraps [ErrInvalidInput] ([ClassPermanent]).
//
// It returns nil only for HTTP 200 with retcode "0". The request is bounded
// by RequestTimeout or ctx's earlier deadline. A failure without an answer
// ([RetCodeOf] == "") is ambiguous: the release may have happened. Use
// [Classify] to decide; 200-023/200-024 mean the party is already gone.
func (c *Client) Disconnect(ctx context.Context, agentID int, number, guid string) error {
	const op = "disconnect"
	if err := checkAgentID(op, agentID); err != nil {
		return err
	}
	if err := checkNumber(op, number); err != nil {
		return err
	}
	if err := checkGUID(op, guid); err != nil {
		return err
	}
	_, err := c.do(ctx, call{
		op:      op,
		method:  http.MethodPost,
		path:    agentPath("voicecall", agentID) + "/disconnect/" + number,
		guid:    guid,
		timeout: c.reqTimeout,
		secrets: []string{guid, number},
	})
	return err
}
