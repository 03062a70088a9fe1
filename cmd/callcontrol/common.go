package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// drain flushes and closes nc, waiting at most d.
func drain(nc *nats.Conn, d time.Duration) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(d):
		nc.Close()
	}
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
	for f, n := range map[string]string{"Concurrency": "concurrency", "DefaultTTL": "default-ttl", "AckWait": "ack-wait",
		"MaxDeliver": "max-deliver", "LeaseTTL": "lease-ttl", "ShutdownTimeout": "shutdown-timeout",
		"ConfirmWithin": "confirm-within", "RequireCallID": "require-call-id", "CallStateMaxAge": "call-state-max-age",
		"CallStartMargin": "call-start-margin", "MaxClockSkew": "max-clock-skew", "SkipCallCheck": "skip-call-check",
		"CallStateLag": "call-state-lag", "InitialInterval": "retry-initial", "MaxInterval": "retry-max"} {
		s.field(f, n)
	}
}

// resultWriteBudget is what a stopping worker needs after a request's
// answer to record its outcome (ledger, result, dead letter).
const resultWriteBudget = 2 * time.Second

// checkShutdownTimeout refuses a shutdown timeout that cannot let a request
// already sent run to its answer and be recorded (DESIGN.md #9).
func checkShutdownTimeout(c worker.Config, gatewayTimeout time.Duration) error {
	if need := gatewayTimeout + resultWriteBudget; c.ShutdownTimeout < need {
		return fmt.Errorf("--shutdown-timeout %s is shorter than --gateway-timeout %s plus %s to record the outcome: "+
			"a request in flight at shutdown could not be recorded; use at least %s", c.ShutdownTimeout, gatewayTimeout, resultWriteBudget, need)
	}
	return nil
}

// gatewayFlags are the gateway client's settings.
func gatewayFlags(s *settings, c *gateway.Config) {
	defer s.group(groupConnection)()
	fs := s.fs
	fs.StringVar(&c.BaseURL, "gateway-url", "", "CC-Gateway base URL, e.g. https://10.0.0.1:8043 (the NSLB address in a cluster)")
	fs.StringVar(&c.CAFile, "gateway-ca", "", "PEM file of the CA that signed the gateway's certificate")
	fs.StringVar(&c.CertFile, "gateway-cert", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.KeyFile, "gateway-key", "", "client key (PEM) for mutual TLS")
	fs.BoolVar(&c.InsecureSkipVerify, "gateway-insecure-skip-verify", false,
		"DANGEROUS: do not verify the gateway's TLS certificate (logged as a WARN at start); use --gateway-ca instead")
	fs.DurationVar(&c.RequestTimeout, "gateway-timeout", 5*time.Second, "timeout of one gateway request")
	for f, n := range map[string]string{"BaseURL": "gateway-url", "CAFile": "gateway-ca", "CertFile": "gateway-cert",
		"KeyFile": "gateway-key", "RequestTimeout": "gateway-timeout", "InsecureSkipVerify": "gateway-insecure-skip-verify"} {
		s.field(f, n)
	}
}

// newLogger returns the process logger: JSON lines, or console text.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level (CALLCONTROL_LOG_LEVEL): %w", err)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format (CALLCONTROL_LOG_FORMAT): must be json or console, got %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

type logFlags struct{ level, format string }

func (l *logFlags) register(s *settings, defFormat string) {
	defer s.group(groupOutput)()
	s.fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	s.fs.StringVar(&l.format, "log-format", defFormat, "log format: json or console")
	errorLog.Store(l)
}

// errorLog is the log flags of the command being run, if it has any: main
// prints the error that ends the process in its format, so that an error
// found before the logger exists (a bad setting, NATS unreachable) is a
// JSON line under --log-format json too.
var errorLog atomic.Pointer[logFlags]

// printExitError writes err, the error that ends the process, to w: a
// JSON line when the command's log format is json, else plain text.
func printExitError(w io.Writer, err error) {
	if l := errorLog.Load(); l != nil && l.format == "json" {
		log := zerolog.New(w).With().Timestamp().Logger()
		log.Error().Str("error", err.Error()).Msg("callcontrol exited")
		return
	}
	fmt.Fprintln(w, "callcontrol:", err)
}

func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	return newLogger(w, l.level, l.format)
}

var stderr io.Writer = os.Stderr

// serveRole runs one long-running role: it builds the gateway client,
// connects to NATS (waiting for it: see connectWait), serves the health and metrics endpoint (obs),
// provisions the shared streams and buckets and the role's own
// (parts of topo, whose Replicas is --nats-replicas), then runs the role until ctx ends. On the way out it drains
// the NATS connection.
func serveRole(ctx context.Context, name string, s *settings, nf *natsFlags, hf *healthFlags, obs *health.Observability, gcfg gateway.Config,
	topo topology.Config, parts topology.Part,
	run func(context.Context, jetstream.JetStream, *gateway.Client) error) error {
	gw, err := gateway.New(gcfg)
	if err != nil {
		return s.explain(err)
	}
	defer gw.Close()
	// The health endpoint is up while the first connection is awaited:
	// /healthz 200, /readyz 503 until connected and provisioned.
	stopHealth, bind, err := hf.startLate(ctx, obs)
	if err != nil {
		return err
	}
	defer stopHealth()
	nc, js, err := nf.connectWait(ctx, name)
	if err != nil {
		return err
	}
	defer drain(nc, 5*time.Second)
	topo.Replicas = nf.replicas
	if err := topology.Ensure(ctx, js, topo, parts); err != nil {
		return err
	}
	// Ready only once the streams and buckets the role needs exist.
	if err := bind(nc, js); err != nil {
		return err
	}
	return run(ctx, js, gw)
}
