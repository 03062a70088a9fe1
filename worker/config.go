package worker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Config of a [Worker]. The zero value of each field takes the default
// named in its comment; [Config.Validate] rejects values that cannot work.
type Config struct {
	// Concurrency is how many commands one worker executes at once. The
	// subscription keeps up to min(Concurrency/2, 32) further messages
	// ready so that a slot that frees finds its next command without a
	// round trip; a message waits there only until a slot frees, and its
	// AckWait runs meanwhile. Default 64.
	Concurrency int
	// DefaultTTL is the lifetime of a command that carries neither
	// expires_at nor ttl_ms, counted from issued_at (or the time JetStream
	// stored it). Default 30s.
	DefaultTTL time.Duration
	// MaxClockSkew is how far a requester's clock may run ahead of the
	// NATS server's: a command whose issued_at is later than when
	// JetStream stored it by more than this, or whose expires_at is more
	// than 1h (the longest TTL) plus this after it, is rejected (see
	// events.DisconnectCommand.CheckTimes). Default 5s.
	MaxClockSkew time.Duration
	// ExpiryGuard: no gateway request is started when less than this is
	// left before the command's deadline. Default 50ms.
	ExpiryGuard time.Duration
	// AckWait and MaxDeliver configure the shared consumer. A message in
	// progress is kept alive with InProgress every AckWait/3, so AckWait
	// only fires for a worker that died. Defaults 30s and 5.
	AckWait    time.Duration
	MaxDeliver int
	// FetchWait is the pause before the worker subscribes again when its
	// pull subscription failed (and the advisory consumer's pull wait).
	// Default 1s.
	FetchWait time.Duration
	// LeaseTTL is how long the per-agent lease lives in the lease bucket
	// without renewal: the time other replicas wait for a dead worker's
	// agents. Renewed every LeaseTTL/8 while a command runs: a gateway
	// request starts with at least 5/8 of it left and never outlives the
	// lease, so it should be above 8/5 of the gateway timeout. Default 15s.
	LeaseTTL time.Duration
	// Backoff between gateway attempts: exponential from InitialInterval by
	// Multiplier up to MaxInterval, each randomised by ±RandomizationFactor;
	// the elapsed time is capped by the command's deadline. Defaults 100ms,
	// 2, 2s, 0.2.
	InitialInterval     time.Duration
	Multiplier          float64
	MaxInterval         time.Duration
	RandomizationFactor float64
	// MaxLimited is how many times a "limited" gateway error (100-007) is
	// retried before the command fails. Default 3.
	MaxLimited int
	// SessionWait is how long a session error (100-006, 000-003, ...) waits
	// for the session registry to hold a different GUID before the single
	// session retry. Default 2s.
	SessionWait time.Duration
	// ConfirmWithin is how long after acceptance the poller waits for the
	// release event of a disconnect before reporting it unconfirmed.
	// Default 15s.
	ConfirmWithin time.Duration
	// CallStateMaxAge: the poller's live call state of an agent
	// ([events.BucketCalls]) is trusted for a command's call check only
	// while its owner polls the agent and has seen every event up to less
	// than this ago; otherwise the worker asks the gateway's call-info
	// query. Default 500ms (the poller refreshes it every 200ms by
	// default, while a poll is outstanding). Short on purpose: a state can only be as current as its
	// poller was alive, and a dead or cut-off poller's state says nothing
	// of a call that ended since (a held call may then be the agent's
	// last one at once). Found by the soak.
	CallStateMaxAge time.Duration
	// CallStateLag bounds how long an agent's event takes to reach the
	// call state while its poller is live (the long poll answers at once,
	// then one KV write and its watch). The state's "this call is not up"
	// about a command stored less than this ago is checked with the
	// gateway's call-info query instead: the event of a call that began
	// just before the command may still be on its way. Default 300ms.
	CallStateLag time.Duration
	// CallStartMargin: a plain command (no call_id) is pinned to the
	// agent's last call that began no later than this after the command
	// was stored; a call that began later is never its call. It allows
	// for the poller receiving a call's first event after the call began
	// and for clock skew between the poller and NATS. Default 500ms.
	CallStartMargin time.Duration
	// RequireCallID rejects commands without call_id.
	RequireCallID bool
	// SkipCallCheck sends without checking the command's call: it gives
	// up DESIGN.md guarantee 8 and exists only so that callcontrol bench
	// can measure what the check costs. Never set it in production.
	SkipCallCheck bool
	// ShutdownTimeout bounds how long Run waits for in-flight commands after
	// its context ends; then those still waiting (for the agent, a backoff,
	// a NATS write) are cancelled and Nak'ed. A gateway request already sent
	// is never cancelled: it runs to its answer (or its own deadline) and
	// its outcome is recorded before Run returns, so set it at least to the
	// gateway timeout plus the time to record a result. Default 30s.
	ShutdownTimeout time.Duration
	// Instance names this worker in leases and logs. Default hostname-pid.
	Instance string
	// Logger receives one line per disposed message. Default: no logging.
	Logger zerolog.Logger
	// Metrics receives the worker's measurements (commands by outcome,
	// gateway requests, latencies, AckWait margin). Default nil: none.
	Metrics *metrics.Metrics
	// TracerProvider records the spans of each delivery ("disconnect") and
	// of each gateway request ("gateway.disconnect"). Default nil: the
	// global provider, a no-op unless the process installed one. Trace
	// context is propagated either way (see package tracing).
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	def(&c.DefaultTTL, 30*time.Second)
	def(&c.ExpiryGuard, 50*time.Millisecond)
	def(&c.MaxClockSkew, 5*time.Second)
	def(&c.AckWait, topology.DefaultAckWait)
	if c.MaxDeliver == 0 {
		c.MaxDeliver = topology.DefaultMaxDeliver
	}
	def(&c.FetchWait, time.Second)
	def(&c.LeaseTTL, topology.DefaultWorkerLeaseTTL)
	def(&c.InitialInterval, 100*time.Millisecond)
	if c.Multiplier == 0 {
		c.Multiplier = 2
	}
	def(&c.MaxInterval, 2*time.Second)
	if c.RandomizationFactor == 0 {
		c.RandomizationFactor = 0.2
	}
	if c.MaxLimited == 0 {
		c.MaxLimited = 3
	}
	def(&c.SessionWait, 2*time.Second)
	def(&c.ConfirmWithin, 15*time.Second)
	def(&c.ShutdownTimeout, 30*time.Second)
	def(&c.CallStateMaxAge, 500*time.Millisecond)
	def(&c.CallStartMargin, 500*time.Millisecond)
	def(&c.CallStateLag, 300*time.Millisecond)
	if c.Instance == "" {
		host, _ := os.Hostname()
		c.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	return c
}

// Validate reports the first setting that cannot work, by name. It checks
// the values after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	check := func(ok bool, field, rule string) {
		if !ok {
			errs = append(errs, fmt.Errorf("worker: %s: %s", field, rule))
		}
	}
	check(c.Concurrency > 0 && c.Concurrency <= 4096, "Concurrency", "must be 1-4096")
	check(c.DefaultTTL > 0 && c.DefaultTTL <= time.Hour, "DefaultTTL", "must be >0 and at most 1h")
	check(c.MaxClockSkew > 0 && c.MaxClockSkew <= time.Minute, "MaxClockSkew", "must be >0 and at most 1m")
	check(c.ExpiryGuard > 0 && c.ExpiryGuard < c.DefaultTTL, "ExpiryGuard", "must be >0 and below DefaultTTL")
	check(c.AckWait >= time.Second, "AckWait", "must be at least 1s")
	check(c.MaxDeliver >= 2, "MaxDeliver", "must be at least 2")
	check(c.FetchWait >= 10*time.Millisecond && c.FetchWait < c.AckWait, "FetchWait", "must be at least 10ms and below AckWait")
	check(c.LeaseTTL >= time.Second, "LeaseTTL", "must be at least 1s")
	check(c.InitialInterval > 0 && c.InitialInterval <= c.MaxInterval, "InitialInterval", "must be >0 and at most MaxInterval")
	check(c.Multiplier >= 1, "Multiplier", "must be at least 1")
	check(c.RandomizationFactor >= 0 && c.RandomizationFactor < 1, "RandomizationFactor", "must be in [0,1)")
	check(c.MaxLimited >= 0, "MaxLimited", "must not be negative")
	check(c.SessionWait >= 0, "SessionWait", "must not be negative")
	check(c.ConfirmWithin > 0, "ConfirmWithin", "must be >0")
	check(c.ShutdownTimeout > 0, "ShutdownTimeout", "must be >0")
	check(c.CallStateMaxAge > 0, "CallStateMaxAge", "must be >0")
	check(c.CallStartMargin >= 0, "CallStartMargin", "must not be negative")
	check(c.CallStateLag >= 0 && c.CallStateLag < c.CallStateMaxAge, "CallStateLag", "must not be negative and below CallStateMaxAge")
	return errors.Join(errs...)
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config { return Config{}.withDefaults() }
