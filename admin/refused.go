package admin

import (
	"errors"
	"fmt"
)

// Reasons of a [ReplayRefusedError]: stable codes a client may switch on.
const (
	// RefusedRejected: the dead letter is a rejected command (its payload
	// breaks a rule); publish a corrected one with a new command_id.
	RefusedRejected = "rejected"
	// RefusedIDMismatch: the command_id header and the payload disagree.
	RefusedIDMismatch = "id_mismatch"
	// RefusedAlreadyExecuted: the command was accepted (ledger, result or
	// confirmation); replaying would release the party again.
	RefusedAlreadyExecuted = "already_executed"
	// RefusedExecuting: a worker is executing the command now.
	RefusedExecuting = "executing"
	// RefusedUnknownState: the ledger record has a state this version
	// does not know.
	RefusedUnknownState = "unknown_ledger_state"
	// RefusedOutcomeUnknown: the gateway may have executed the command
	// (outcome_unknown or max_deliveries); only Force replays it.
	RefusedOutcomeUnknown = "outcome_unknown"
	// RefusedDeadlineUnknown: the command's deadline cannot be pinned;
	// only Force replays it.
	RefusedDeadlineUnknown = "deadline_unknown"
	// RefusedExpired: the command's deadline has passed (or is less than
	// a second away); only Force replays it.
	RefusedExpired = "expired"
	// RefusedCallUnknown: Force re-dates a command whose call is not known.
	RefusedCallUnknown = "call_unknown"
	// RefusedCallEnded, RefusedCallMismatch, RefusedNotAParty: the live
	// call state shows the command's call is over, is not the agent's last
	// call, or does not have the number in it (Err is the
	// [*events.CallMismatch]).
	RefusedCallEnded    = "call_ended"
	RefusedCallMismatch = "call_mismatch"
	RefusedNotAParty    = "not_a_party"
	// RefusedInvalid: the command to republish does not validate.
	RefusedInvalid = "invalid"
)

// ReplayRefusedError is returned by [Client.Replay] when the dead letter
// must not be replayed as asked. Nothing was changed: the ledger record
// is cleared only after every check passed.
type ReplayRefusedError struct {
	Reason string // one of the Refused* codes
	Detail string // what an operator reads: why, and what to do instead
	Err    error  // the underlying cause, if any
}

func (e *ReplayRefusedError) Error() string { return e.Detail }

// Unwrap returns the underlying cause.
func (e *ReplayRefusedError) Unwrap() error { return e.Err }

// IsRefused reports whether err is (or wraps) a [*ReplayRefusedError].
func IsRefused(err error) bool {
	var r *ReplayRefusedError
	return errors.As(err, &r)
}

func refused(reason, format string, a ...any) error {
	return &ReplayRefusedError{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}
