package events

import (
	"strings"
	"time"
)

// CheckTimes checks c's times against stored, when JetStream stored the
// command, allowing maxSkew between the requester's clock and the
// server's: issued_at may not be more than maxSkew after stored, and
// expires_at not more than [MaxTTL] + maxSkew after it. Decoding cannot
// check this (it knows no clock); without it a command issued 10 minutes
// "ahead" would live 10 minutes longer than its TTL, and a late disconnect
// can hang up the agent's next call. The error is a *[ValidationError]
// naming the field.
func (c *DisconnectCommand) CheckTimes(stored time.Time, maxSkew time.Duration) error {
	switch {
	case !c.IssuedAt.IsZero() && c.IssuedAt.Sub(stored) > maxSkew:
		return invalid("issued_at", "must not be later than when the command was stored (by more than the clock skew allowed, "+maxSkew.String()+")")
	case !c.ExpiresAt.IsZero() && c.ExpiresAt.Sub(stored) > MaxTTL+maxSkew:
		return invalid("expires_at", "must be at most 1h after the command was stored (the longest TTL)")
	}
	return nil
}

// CheckMsgID checks the Nats-Msg-Id header c was published with (msgID)
// against its command_id: JetStream de-duplicates on the header, the
// ledger on the command_id, so they must name the same command. It
// accepts msgID equal to the command_id, the ID `callcontrol dlq replay`
// gives a replayed command ("replay-<command_id>-<n>" or
// "replay-<command_id>-dlq<n>") when replayOf, its [HeaderReplayOf], is a
// sequence number, and an absent header (""): such a command is not
// de-duplicated by JetStream, only by the ledger. Anything else is a
// *[ValidationError] "Nats-Msg-Id: must equal command_id".
func (c *DisconnectCommand) CheckMsgID(msgID, replayOf string) error {
	if msgID == "" || msgID == c.CommandID {
		return nil
	}
	if ReplayMsgIDSuffix(replayOf) != "" {
		if n, ok := strings.CutPrefix(msgID, "replay-"+c.CommandID+"-"); ok {
			n = strings.TrimPrefix(n, "dlq")
			if n != "" && len(n) <= 20 && strings.Trim(n, "0123456789") == "" {
				return nil
			}
		}
	}
	return invalid(HeaderMsgID, "must equal command_id")
}
