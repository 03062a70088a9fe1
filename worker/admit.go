package worker

import "github.com/callcontrol/callcontrol/events"

// admit checks what decoding cannot: the Nats-Msg-Id the command was
// published with, and its times against when JetStream stored it (allowing
// MaxClockSkew). An error rejects the command like a decoding error.
//
// A command whose Nats-Msg-Id is not its command_id is not that command as
// far as JetStream's de-duplication goes, and its command_id may belong to
// another, genuine command: its result is filed under the Nats-Msg-Id
// instead (as for an unreadable command), so that this rejection cannot
// take the place of that command's result ("result-<command_id>").
func (w *Worker) admit(j *job) error {
	if err := j.cmd.CheckMsgID(j.msgID, j.msg.Headers().Get(events.HeaderReplayOf)); err != nil {
		j.cmd.CommandID = ""
		return err
	}
	return j.cmd.CheckTimes(j.meta.Timestamp, w.cfg.MaxClockSkew)
}
