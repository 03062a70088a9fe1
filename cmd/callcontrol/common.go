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
	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

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
	s.fieldFlags(map[string]string{"BaseURL": "gateway-url", "CAFile": "gateway-ca", "CertFile": "gateway-cert",
		"KeyFile": "gateway-key", "RequestTimeout": "gateway-timeout", "InsecureSkipVerify": "gateway-insecure-skip-verify"})
}

// logFlags are --log-level and --log-format.
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

// logger returns the process logger, writing to w: JSON lines, or
// console text.
func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(l.level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level (CALLCONTROL_LOG_LEVEL): %w", err)
	}
	switch l.format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format (CALLCONTROL_LOG_FORMAT): must be json or console, got %q", l.format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

var stderr io.Writer = os.Stderr

// roleFlags are the flags the worker and the poller share: NATS (with
// --connect-timeout and --replicas), logs, the health endpoint and spans.
type roleFlags struct {
	nf natsFlags
	lf logFlags
	hf healthFlags
	tf traceFlags
}

func (r *roleFlags) register(s *settings) {
	r.nf.register(s, defaultNATSURL)
	r.nf.registerRole(s)
	r.lf.register(s, "json")
	r.hf.register(s)
	r.tf.register(s)
}

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
	stopHealth, bind, err := obs.StartLate(ctx, hf.config())
	if err != nil {
		return listenError(err)
	}
	defer stopHealth()
	nc, js, err := nf.connectWait(ctx, name)
	if err != nil {
		return err
	}
	defer natsconn.Drain(nc, 5*time.Second)
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
