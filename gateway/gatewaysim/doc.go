// Package gatewaysim is a CC-Gateway simulator: an [http.Handler] that speaks
// the subset of the Huawei CC-Gateway "agent gateway" REST API that
// callcontrol uses, with realistic sessions, GUID rotation, long polling,
// call topology and injectable faults.
//
// It serves, under /agentgateway/resource:
//
//   - PUT    onlineagent/{agentid}             sign in (100-002 when signed in)
//   - PUT    onlineagent/{agentid}/forcelogin  sign in, taking over a session
//   - DELETE onlineagent/{agentid}/logout      sign out; 100-010 while the agent has a call
//   - DELETE onlineagent/{agentid}/forcelogout sign out at once, releasing the calls
//   - GET    agentevent/{agentid}              long poll, one event per reply
//   - POST   voicecall/{agentid}/disconnect/{number}
//   - PUT    voicecall/{agentid}/callout       {"called","caller",...}: outbound call
//   - GET    calldata/{agentid}/callinfo       the current call (?isNoContainLastCall=)
//   - GET    calldata/{agentid}/callinfobycallid/{callid}
//   - GET    calldata/{agentid}/holdlist       the held calls (400-003 when none)
//
// The call model follows cc-gateway.md; each rule's doc comment marks it
// confirmed ([C]) or inferred ([I]). Only the last call's parties can be
// released; the agent's own soft-phone number ("phonenum" at sign-in, else
// its work number) makes it leave its last call; a simulated helper of an
// inner-help call gets its own side of it and may release only itself.
// Every call has a new ID and its customer's next generation, so a
// redialed call is told apart from the one before it ([Disconnect]).
//
// Unlike a real gateway, signing in an unknown agent creates it (with the
// password given), so demos and benchmarks with thousands of agents need
// no setup. Agent IDs must be
// 101..59999 on every gateway URI (000-002 otherwise).
//
// Every reply is JSON {"message","retcode","result"} with HTTP 200, also for
// business errors; only injected faults ([Faults]) produce other outcomes.
//
// The simulator keeps counters that let tests prove properties of a client:
// [Sim.Executed] and [Sim.Disconnects] (no duplicate execution, nothing
// executed late, no party of a redialed call released: each executed
// record names the call, its generation and whether it was a redial),
// [Sim.Overlaps] (never two operations for one agent at once, call-data
// queries included; the second gets 000-007) and [Sim.ConcurrentPolls].
//
// The admin API under /simulator/ exists only in the simulator (a real
// gateway has nothing like it). It drives demos and container tests:
//
//   - GET  /simulator/stats                   counters as JSON
//   - GET  /simulator/disconnects             every disconnect request
//   - GET, PUT /simulator/faults              the fault plan ([Faults])
//   - GET, PUT /simulator/redial              {"after_ms"}: automatic redial delay, 0 = off
//   - POST /simulator/agents/{id}/signin      force sign-in, returns {"guid"}
//   - GET  /simulator/agents/{id}/calls       the agent's calls ([CallState]), last one last
//   - POST /simulator/agents/{id}/calls       {"customer"}: a call from that number, {"callid"}
//   - POST /simulator/agents/{id}/callout     {"called","caller"}: outbound call, {"callid"}
//   - POST /simulator/agents/{id}/hangup      {"number"}: the party hangs up
//   - POST /simulator/agents/{id}/endcall     {"callid"} (optional): the customer hangs up
//   - POST /simulator/agents/{id}/redial      {"customer"} (optional): it calls again now
//   - POST /simulator/agents/{id}/hold        hold the current call
//   - POST /simulator/agents/{id}/innerhelp   {"helper","three_party"}
//   - POST /simulator/agents/{id}/confjoin    merge held and current call
//
// Each admin operation is also a [Sim] method: [Sim.StartCall],
// [Sim.Callout], [Sim.CustomerHangup], [Sim.EndCall], [Sim.Redial],
// [Sim.SetRedialAfter], [Sim.Calls], [Sim.Hold], [Sim.InnerHelp],
// [Sim.ConfJoin].
//
// The package does not log. All methods are safe for concurrent use.
package gatewaysim
