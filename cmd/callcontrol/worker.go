package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// runWorker runs one worker replica against a NATS server and a gateway.
func runWorker(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("worker", stdout)
	var (
		rf   roleFlags
		wcfg worker.Config
		gcfg gateway.Config
		gc   gcFlag
	)
	rf.register(s)
	gc.register(s, workerGCPercent)
	workerFlags(s, &wcfg)
	gatewayFlags(s, &gcfg)
	if err := s.parse(args); err != nil {
		return err
	}
	if err := s.positive(workerPositive...); err != nil {
		return err
	}
	if err := gc.apply(); err != nil {
		return err
	}
	log, err := rf.lf.logger(stderr)
	if err != nil {
		return err
	}
	obs, err := health.NewObservability(workerStreams, 2*gateway.DefaultPollTimeout)
	if err != nil {
		return err
	}
	rf.nf.log = &log // WARN lines about risky settings, in the role's log format
	wcfg.Logger, wcfg.Metrics = log, obs.Metrics
	gcfg.MaxConns = wcfg.Concurrency
	if err := checkWorker(s, log, wcfg, gcfg); err != nil {
		return err
	}
	tp, stopTracing, err := rf.tf.provider(stdout, "worker", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	wcfg.TracerProvider = tp
	topo := topology.Config{Workers: wcfg.Topology()}
	return serveRole(ctx, "worker", s, &rf.nf, &rf.hf, obs, gcfg, topo, topology.Workers, func(ctx context.Context, js jetstream.JetStream, gw *gateway.Client) error {
		w, err := worker.New(wcfg, js, gw)
		if err != nil {
			return s.explain(err)
		}
		return w.Run(ctx)
	})
}

// workerPositive lists the worker flags that must be above zero.
var workerPositive = []string{"concurrency", "default-ttl", "max-clock-skew", "ack-wait", "max-deliver", "lease-ttl", "shutdown-timeout", "confirm-within", "call-state-max-age"}

// workerFlags are the worker's settings.
func workerFlags(s *settings, c *worker.Config) {
	fs, d := s.fs, worker.DefaultConfig()
	fs.IntVar(&c.Concurrency, "concurrency", d.Concurrency, "commands executed at once by this worker")
	fs.DurationVar(&c.DefaultTTL, "default-ttl", d.DefaultTTL, "lifetime of a command without expires_at or ttl_ms")
	fs.DurationVar(&c.MaxClockSkew, "max-clock-skew", d.MaxClockSkew, "how far a requester's clock may run ahead of the NATS server's: a command issued later than it was stored by more than this (or expiring more than 1h plus this after) is rejected; at most 1m")
	fs.DurationVar(&c.AckWait, "ack-wait", d.AckWait, "JetStream AckWait of the worker consumer")
	fs.IntVar(&c.MaxDeliver, "max-deliver", d.MaxDeliver, "deliveries of one command before it fails as max_deliveries")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", d.LeaseTTL, "per-agent lease TTL: how long a dead worker's agents stay blocked")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long a stopping worker finishes in-flight commands")
	fs.DurationVar(&c.ConfirmWithin, "confirm-within", d.ConfirmWithin, "how long an accepted disconnect waits for its release event before it is unconfirmed")
	fs.BoolVar(&c.RequireCallID, "require-call-id", false, "reject commands without call_id")
	fs.DurationVar(&c.InitialInterval, "retry-initial", d.InitialInterval, "first wait between gateway attempts (doubling, randomized by 20%)")
	fs.DurationVar(&c.MaxInterval, "retry-max", d.MaxInterval, "longest wait between gateway attempts")
	fs.DurationVar(&c.CallStateMaxAge, "call-state-max-age", d.CallStateMaxAge,
		"trust the pollers' live call state this long after they last saw the agent's events; older: ask the gateway's call-info query")
	fs.DurationVar(&c.CallStateLag, "call-state-lag", d.CallStateLag,
		"how long an event may take to reach the pollers' call state: its 'call not up' about a command stored less than this ago is checked with the gateway")
	fs.DurationVar(&c.CallStartMargin, "call-start-margin", d.CallStartMargin,
		"a plain command is pinned to the agent's last call that began at most this after the command was stored")
	// Hidden, for callcontrol bench only: it measures what the call check
	// costs against a worker without it. DANGEROUS: a release sent without
	// the check can hang up the customer's next call (DESIGN.md #8).
	fs.BoolVar(&c.SkipCallCheck, "skip-call-check", false,
		"DANGEROUS, bench only: send without checking the command's call (gives up the call scope)")
	s.hide("skip-call-check")
	s.fieldFlags(map[string]string{"Concurrency": "concurrency", "DefaultTTL": "default-ttl", "AckWait": "ack-wait",
		"MaxDeliver": "max-deliver", "LeaseTTL": "lease-ttl", "ShutdownTimeout": "shutdown-timeout",
		"ConfirmWithin": "confirm-within", "RequireCallID": "require-call-id", "CallStateMaxAge": "call-state-max-age",
		"CallStartMargin": "call-start-margin", "MaxClockSkew": "max-clock-skew", "SkipCallCheck": "skip-call-check",
		"CallStateLag": "call-state-lag", "InitialInterval": "retry-initial", "MaxInterval": "retry-max"})
}

// resultWriteBudget is what a stopping worker needs after a request's
// answer to record its outcome (ledger, result, dead letter).
const resultWriteBudget = 2 * time.Second

// checkWorker validates the worker's and its gateway client's configs,
// refuses a shutdown timeout that cannot let a request already sent run
// to its answer and be recorded (DESIGN.md #9), and warns (on log) about
// a gateway timeout the agent lease cannot cover.
func checkWorker(s *settings, log zerolog.Logger, wcfg worker.Config, gcfg gateway.Config) error {
	if err := wcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if err := gcfg.Validate(); err != nil {
		return s.explain(err)
	}
	if need := gcfg.RequestTimeout + resultWriteBudget; wcfg.ShutdownTimeout < need {
		return fmt.Errorf("--shutdown-timeout %s is shorter than --gateway-timeout %s plus %s to record the outcome: "+
			"a request in flight at shutdown could not be recorded; use at least %s", wcfg.ShutdownTimeout, gcfg.RequestTimeout, resultWriteBudget, need)
	}
	if lease := cmp.Or(wcfg.LeaseTTL, worker.DefaultConfig().LeaseTTL); gcfg.RequestTimeout*8/5 > lease {
		log.Warn().Dur("gateway_timeout", gcfg.RequestTimeout).Dur("lease_ttl", lease).
			Msg("--gateway-timeout above 5/8 of --lease-ttl: a request that slow is cut off where the agent lease could lapse")
	}
	return nil
}
