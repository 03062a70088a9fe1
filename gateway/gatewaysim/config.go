package gatewaysim

import "time"

// Defaults applied by [New] to zero [Config] fields.
const (
	DefaultGUIDInterval = 60 * time.Second
	DefaultGUIDTimeout  = 120 * time.Second
	DefaultPollHold     = 10 * time.Second
	DefaultNode         = "AgentGateway0"
)

// Config configures a [Sim]. The zero value is a static-GUID gateway with
// the real gateway's poll hold and no faults.
type Config struct {
	// AuthMode is 1 for a static GUID (fixed for the session) or 2 for a
	// rotating GUID delivered in Set-GUID on poll replies. Default 1; any
	// value other than 2 means 1.
	AuthMode int
	// GUIDInterval: in AUTHMODE 2 a poll reply carries a new GUID once this
	// has passed since the current one was issued. Default 60s.
	GUIDInterval time.Duration
	// GUIDTimeout: in AUTHMODE 2 a GUID (current or previous) is valid
	// this long after it was issued. Should exceed GUIDInterval so that the
	// previous GUID overlaps the new one. Default 120s.
	GUIDTimeout time.Duration
	// PollHold is how long a poll is held when the agent's queue is empty.
	// Default 10s (the real gateway's 100 × 100 ms).
	PollHold time.Duration
	// NoPollSignOut signs an agent out when it has not been polled for this
	// long (by Now). The real gateway uses about 2m. 0 disables it (default).
	NoPollSignOut time.Duration
	// Node is the GUID suffix, as in "<uuid>.AgentGateway0".
	// Default "AgentGateway0".
	Node string
	// Latency is added to every non-poll gateway request (not the admin
	// API) inside its in-flight window, so overlaps become visible.
	// Default 0.
	Latency time.Duration
	// RedialAfter (demo mode): when an agent's last call ends, a new call
	// from the same customer (a new call ID, the customer's next
	// generation) rings in and is answered after this delay, if the agent
	// is still in the same session. 0 disables it (default). Change it at
	// run time with [Sim.SetRedialAfter]; [Sim.Redial] redials at once.
	RedialAfter time.Duration
	// Now is the clock for GUID expiry, the no-poll sign-out, event and
	// record timestamps. Holds, latency and redial use real timers.
	// Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.AuthMode != 2 {
		c.AuthMode = 1
	}
	if c.GUIDInterval <= 0 {
		c.GUIDInterval = DefaultGUIDInterval
	}
	if c.GUIDTimeout <= 0 {
		c.GUIDTimeout = DefaultGUIDTimeout
	}
	if c.PollHold <= 0 {
		c.PollHold = DefaultPollHold
	}
	if c.Node == "" {
		c.Node = DefaultNode
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
