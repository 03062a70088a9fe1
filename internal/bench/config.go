package bench

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is one run of the bench. Sizes, Executable and the four
// functions are required; the rest have defaults.
type Config struct {
	// Sizes are the run's sizes (FullSizes or QuickSizes, adjusted).
	Sizes Sizes
	// Scenarios are the scenarios to run, each one of [Scenarios];
	// nil runs them all.
	Scenarios []string
	// Version is the binary's version, written into the report.
	Version string
	// Executable is the callcontrol binary the children run: `worker`,
	// `poller` and `bench-floor` with the NATS, gateway and health
	// flags the bench adds (usually the running binary, os.Executable).
	Executable string
	// ProfileDir, if set, receives a 5 s CPU profile of the worker during
	// the ceiling run (worker-ceiling.pprof).
	ProfileDir string
	// Progress receives the progress line (drawn in place on a
	// terminal, a line per phase elsewhere) and each scenario's failure.
	// Default: io.Discard.
	Progress io.Writer

	// StartNATS starts an embedded NATS server with JetStream on listen
	// (the bench passes "127.0.0.1:0") storing in dataDir; the bench
	// shuts it down.
	StartNATS func(listen, dataDir string) (*natsembed.Server, error)
	// Connect connects to the NATS server at url for the bench's own
	// load (publishing, taps, scratch streams).
	Connect func(url string) (*nats.Conn, jetstream.JetStream, error)
	// StartGateway starts a gateway simulator with cfg, served over HTTPS
	// on a loopback port until its Stop.
	StartGateway func(cfg gatewaysim.Config) (*Gateway, error)
}

// Gateway is a running gateway simulator (see Config.StartGateway).
type Gateway struct {
	Sim     *gatewaysim.Sim
	URL     string       // https://host:port
	CertPEM []byte       // the simulator's self-signed certificate; nil for plain HTTP
	Stop    func() error // stops serving and waits; called once
}

// client returns a gateway client of g with conns connections that trusts
// its certificate.
func (g *Gateway) client(conns int) (*gateway.Client, error) {
	cfg := gateway.Config{BaseURL: g.URL, MaxConns: conns}
	if g.CertPEM != nil {
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(g.CertPEM)
	}
	return gateway.New(cfg)
}

// InvalidConfigError is Run's error for a Config it cannot run.
type InvalidConfigError struct {
	Field  string // the Config field
	Reason string
	Err    error // what errors.Is finds beside the error itself (ErrUnknownScenario); may be nil
}

func (e *InvalidConfigError) Error() string { return "bench: Config." + e.Field + ": " + e.Reason }

func (e *InvalidConfigError) Unwrap() error { return e.Err }

// ErrUnknownScenario is wrapped by the InvalidConfigError of a scenario
// not in [Scenarios].
var ErrUnknownScenario = errors.New("unknown scenario")

func (c Config) withDefaults() Config {
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Validate reports the first field Run cannot run with, as an
// *InvalidConfigError.
func (c Config) Validate() error {
	for _, sc := range c.Scenarios {
		if !slices.Contains(Scenarios, sc) {
			return &InvalidConfigError{Field: "Scenarios", Err: ErrUnknownScenario,
				Reason: fmt.Sprintf("%s %q; known: %s", ErrUnknownScenario, sc, strings.Join(Scenarios, ", "))}
		}
	}
	switch {
	case c.Executable == "":
		return &InvalidConfigError{Field: "Executable", Reason: "required"}
	case c.StartNATS == nil:
		return &InvalidConfigError{Field: "StartNATS", Reason: "required"}
	case c.Connect == nil:
		return &InvalidConfigError{Field: "Connect", Reason: "required"}
	case c.StartGateway == nil:
		return &InvalidConfigError{Field: "StartGateway", Reason: "required"}
	case c.Sizes.CeilingN < 0 || c.Sizes.PollAgents < 0:
		return &InvalidConfigError{Field: "Sizes", Reason: "must not be negative"}
	case c.Sizes.CeilingN > c.Sizes.MaxCeilingCommands():
		return &InvalidConfigError{Field: "Sizes.CeilingN", Reason: fmt.Sprintf("at most %d", c.Sizes.MaxCeilingCommands())}
	}
	return nil
}

// runs reports whether the scenario name is to run.
func (c Config) runs(name string) bool {
	return c.Scenarios == nil || slices.Contains(c.Scenarios, name)
}
