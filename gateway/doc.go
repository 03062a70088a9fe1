// Package gateway is the HTTP client of the Huawei CC-Gateway ("agent
// gateway") REST API: sign-in and sign-out of an agent, the event long poll,
// the agent's last call ([Client.CallInfo], [Client.CallInfoByCallID]) and
// the release of one party of a call with [Client.Disconnect].
//
// The package knows only HTTP and the gateway's JSON. It never logs, holds
// no session state (the caller owns the agent's current GUID and replaces it
// whenever [Poll.SetGUID] or [Client.SignIn] returns a new one), and does not
// retry: every failure is returned as an [*Error], and [Classify] tells the
// caller whether to retry, refresh the session, or give up.
//
// Every request carries the W3C trace context of its ctx (a traceparent
// header) when ctx has a valid span context; otherwise none.
//
// Error strings are safe to log: they never contain the GUID, the request
// URL or the phone number of a disconnect.
package gateway
