// Package api is callcontrol's HTTP door: CRM workflows and IVR scripts
// issue disconnects and follow their results over HTTP(S) with the same
// guarantees as the NATS path. A [Server] is an http.Handler on the
// standard library's ServeMux; it is a client of JetStream through the
// operator API ([admin.Client]) and keeps no state of its own besides the
// idempotency bucket ([topology.BucketIdempotency]).
//
// Routes (the OpenAPI 3.1 document, [OpenAPI], served at
// GET /v1/openapi.json, is the reference):
//
//	POST /v1/disconnects                  publish a command (Idempotency-Key, Prefer: wait=N)
//	GET  /v1/commands/{id}                a command's ledger state, result, confirmation, attempts
//	GET  /v1/agents, /v1/agents/{id}      sessions and live calls
//	GET  /v1/deadletters, /v1/deadletters/{seq}
//	POST /v1/deadletters/{seq}/replay     the same refusals as `callcontrol dlq replay`
//	GET  /v1/events                       Server-Sent Events, resumable with Last-Event-ID
//
// Every request but the document's carries a bearer token from the token
// file ([LoadTokens]): its scopes and optional agent range decide what it
// may do, its name becomes the command's requested_by, and it has its own
// rate limit. Errors are RFC 9457 problem details
// (application/problem+json, [Problem]).
//
// The server logs one line per request (method, route pattern, status,
// duration, token name) and nothing else; it never logs a token, a GUID
// or a phone number, and the numbers in its responses are masked.
package api
