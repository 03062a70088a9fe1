package poller

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Config of a [Poller]. The zero value of each field takes the default
// named in its comment; [Config.Validate] rejects values that cannot work.
type Config struct {
	// Instance names this replica in events.BucketPollers (the key
	// "member.<Instance>" and the value of the agent leases it holds) and in
	// logs. It must be a valid KV key token: letters, digits, '-', '_', '='
	// and '/' only. Replicas running at the same time need distinct names.
	// Default "<hostname>-<pid>" with invalid characters replaced by '_'.
	Instance string

	// LeaseTTL must equal the TTL of events.BucketPollers
	// (topology.PollersConfig.LeaseTTL; see [Config.Topology]): a lease or membership not renewed for
	// this long vanishes, so it is how long a dead replica's agents wait to
	// be taken over. Leases and membership are renewed every LeaseTTL/6.
	// Default 30s.
	LeaseTTL time.Duration

	// PollTimeout is the gateway client's PollTimeout (gateway.Config): the
	// longest one poll can take. A poll starts only while the agent's lease
	// is certainly held for at least this long, so a poll never outlives its
	// lease. It must stay below LeaseTTL*9/10 - LeaseTTL/6 so that renewals
	// keep up. Default 20s.
	PollTimeout time.Duration

	// PollGap is the pause after an empty poll; after an event the next
	// poll starts at once. The gateway documents 200-500 ms. Default 200ms.
	PollGap time.Duration

	// InitialBackoff and MaxBackoff bound the exponential backoff (factor 2,
	// ±20% jitter, no elapsed-time limit) of one agent's loop after a
	// gateway error other than a session error, and of a publish or
	// session write that NATS refused. Defaults 500ms and 10s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration

	// ReleaseGrace is passed to the confirmer: how long a release event
	// waits for the worker's pending record of the disconnect that caused
	// it. Default 30s.
	ReleaseGrace time.Duration

	// CallStateRefresh bounds how often the agent's call state
	// (events.BucketCalls) is rewritten only to advance its ObservedAt,
	// while the agent has a call and a poll is outstanding (every event
	// that changes the state is written at once). Workers trust the state
	// while ObservedAt is recent, so their maximum age must exceed this.
	// Default 200ms (workers trust a state for 500ms by default); at
	// least 100ms.
	CallStateRefresh time.Duration

	// Logger receives one line per session change, loop start and stop
	// (debug) and error. The zero value logs nothing.
	Logger zerolog.Logger

	// Metrics receives the poller's measurements (polls, GUID rotations,
	// agents owned, pending and published confirmations). Default nil: none.
	Metrics *metrics.Metrics

	// TracerProvider records a "confirm" span per published confirmation,
	// a child of the trace context in the worker's pending record. Default
	// nil: the global provider, a no-op unless the process installed one;
	// the confirmation then carries the pending record's traceparent as it is.
	TracerProvider trace.TracerProvider
}

// noPollSignOut is how long the gateway lets an agent go unpolled before
// it signs the agent out.
const noPollSignOut = 2 * time.Minute

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	def(&c.LeaseTTL, topology.DefaultPollLeaseTTL)
	def(&c.PollTimeout, 20*time.Second)
	def(&c.PollGap, 200*time.Millisecond)
	def(&c.InitialBackoff, 500*time.Millisecond)
	def(&c.MaxBackoff, 10*time.Second)
	def(&c.ReleaseGrace, 30*time.Second)
	def(&c.CallStateRefresh, 200*time.Millisecond)
	return c
}

// defaultInstance is "<hostname>-<pid>" made a valid KV key token.
func defaultInstance() string {
	host, _ := os.Hostname()
	return strings.Map(func(r rune) rune {
		if validTokenRune(r) {
			return r
		}
		return '_'
	}, host+"-"+strconv.Itoa(os.Getpid()))
}

func validTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '-' || r == '_' || r == '=' || r == '/'
}

// Validate reports every setting that cannot work, naming the field. It
// checks the values after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	check := func(ok bool, field, rule string) {
		if !ok {
			errs = append(errs, fmt.Errorf("poller: %s: %s", field, rule))
		}
	}
	check(len(c.Instance) <= 200 && strings.IndexFunc(c.Instance, func(r rune) bool { return !validTokenRune(r) }) < 0,
		"Instance", "must be at most 200 letters, digits, '-', '_', '=' or '/'")
	check(c.LeaseTTL >= time.Second, "LeaseTTL", "must be at least 1s")
	check(c.PollTimeout > 0 && c.PollTimeout+c.LeaseTTL/6 < c.LeaseTTL*9/10,
		"PollTimeout", "must be >0 and below LeaseTTL*9/10 - LeaseTTL/6 (a poll must fit in the lease between renewals)")
	check(c.PollGap >= 0 && c.PollGap <= 10*time.Second, "PollGap", "must be 0-10s")
	check(c.InitialBackoff > 0 && c.InitialBackoff <= c.MaxBackoff, "InitialBackoff", "must be >0 and at most MaxBackoff")
	check(c.LeaseTTL+c.PollTimeout+c.MaxBackoff < noPollSignOut,
		"MaxBackoff", "LeaseTTL + PollTimeout + MaxBackoff must stay below 2m, or the gateway signs an unpolled agent out")
	check(c.ReleaseGrace > 0, "ReleaseGrace", "must be >0")
	check(c.CallStateRefresh >= 100*time.Millisecond, "CallStateRefresh", "must be at least 100ms")
	return errors.Join(errs...)
}

// DefaultConfig returns the configuration with every default applied
// (Instance included).
func DefaultConfig() Config { return Config{}.withDefaults() }

// Derived timings.

// renewEvery is the period of membership heartbeats and lease renewals.
func (c Config) renewEvery() time.Duration { return c.LeaseTTL / 6 }

// leaseValidity is how long after a lease write was sent the lease is
// certainly still ours: the server expires it no earlier than LeaseTTL
// after it stored it; a tenth is kept as margin for expiry granularity.
func (c Config) leaseValidity() time.Duration { return c.LeaseTTL * 9 / 10 }

// claimRetry is the pause between attempts to take a lease that a live
// replica is handing off (it deletes the key after its poll in flight).
func (c Config) claimRetry() time.Duration {
	return min(max(c.LeaseTTL/12, 50*time.Millisecond), 2500*time.Millisecond)
}

// reconcileEvery is how often ownership is recomputed even without a
// membership or session change (members also die silently, by TTL).
func (c Config) reconcileEvery() time.Duration {
	return min(max(c.LeaseTTL/30, 50*time.Millisecond), time.Second)
}

// opTimeout bounds one KV operation on a lease or membership key. It is
// generous: a lease's validity counts from when its write was sent, and a
// write whose reply is lost leaves its outcome unknown.
func (c Config) opTimeout() time.Duration { return max(c.LeaseTTL/3, time.Second) }

// callWriteTimeout bounds one call-state write (and the read at a loop's
// start). A write waits on nothing but the writer goroutine of its agent.
func (c Config) callWriteTimeout() time.Duration { return min(c.opTimeout(), 5*time.Second) }
