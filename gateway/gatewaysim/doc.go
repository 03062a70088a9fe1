// Package gatewaysim is a CC-Gateway simulator: an [http.Handler] that speaks
// the subset of the Huawei CC-Gateway "agent gateway" REST API that
// callcontrol uses, with realistic sessions, GUID rotation, long polling,
// call topology and injectable faults.
//
// It serves, under /agentgateway/resource:
//
//   - PUT    onlineagent/{agentid}             sign in (100-002 when signed in)
//   - PUT    onlineagent/{agentid}/forcelogin  sign in, taking over a session
//   - DELETE onlineagent/{agentid}/logout      sign out (also /forcelogout)
//   - GET    agentevent/{agentid}              long poll, one event per reply
//   - POST   voicecall/{agentid}/disconnect/{number}
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
// executed late), [Sim.Overlaps] (never two operations for one agent at
// once; the second gets 000-007) and [Sim.ConcurrentPolls].
//
// The admin API under /simulator/ exists only in the simulator (a real
// gateway has nothing like it). It drives demos and container tests:
//
//   - GET  /simulator/stats                   counters as JSON
//   - GET  /simulator/disconnects             every disconnect request
//   - GET, PUT /simulator/faults              the fault plan ([Faults])
//   - POST /simulator/agents/{id}/signin      force sign-in, returns {"guid"}
//   - POST /simulator/agents/{id}/calls       {"customer"}: start a call
//   - POST /simulator/agents/{id}/hangup      {"number"}: the party hangs up
//   - POST /simulator/agents/{id}/hold        hold the current call
//   - POST /simulator/agents/{id}/innerhelp   {"helper","three_party"}
//   - POST /simulator/agents/{id}/confjoin    merge held and current call
//
// The package does not log. All methods are safe for concurrent use.
package gatewaysim
