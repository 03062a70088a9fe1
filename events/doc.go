// Package events is the public contract of callcontrol: the wire types that
// travel over NATS JetStream, the subject, stream, bucket and header names,
// and the validation rules for commands.
//
// Flow: a CRM or IVR publishes a [DisconnectCommand] on [SubjectDisconnect]
// with its command_id as the Nats-Msg-Id. A worker executes it against the
// CC-Gateway and publishes exactly one [Result] on
// [SubjectResults].<status>. A command that cannot be delivered any more is
// copied to [SubjectDeadLetter] with the reason in [HeaderReason].
//
// The package imports the standard library only. The payloads are documented
// for other languages in asyncapi.yaml and the JSON Schemas in schema/.
package events
