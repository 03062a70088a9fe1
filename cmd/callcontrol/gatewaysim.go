package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// simFlags are the simulator's settings.
type simFlags struct {
	listen, certOut     string
	plain               bool
	cfg                 gatewaysim.Config
	faultRate           float64
	faultKinds, retcode string
}

func (f *simFlags) register(s *settings, listen string) {
	fs := s.fs
	connection := s.group(groupConnection)
	fs.StringVar(&f.listen, "gateway-listen", listen, "address the simulator listens on")
	fs.BoolVar(&f.plain, "gateway-plain-http", false, "serve plain HTTP instead of HTTPS with a self-signed certificate")
	connection()
	output := s.group(groupOutput)
	fs.StringVar(&f.certOut, "gateway-cert-out", "", "write the simulator's self-signed certificate (PEM) here, for --gateway-ca")
	output()
	fs.IntVar(&f.cfg.AuthMode, "sim-authmode", 2, "AUTHMODE: 1 static GUID, 2 rotating GUID (the gateway's default)")
	fs.DurationVar(&f.cfg.GUIDInterval, "sim-guid-interval", time.Minute, "AUTHMODE 2: GUID rotation interval")
	fs.DurationVar(&f.cfg.GUIDTimeout, "sim-guid-timeout", 2*time.Minute, "AUTHMODE 2: GUID validity")
	fs.DurationVar(&f.cfg.PollHold, "sim-poll-hold", 10*time.Second, "long-poll hold of an empty event queue")
	fs.DurationVar(&f.cfg.Latency, "sim-latency", 0, "latency added to every non-poll request")
	fs.DurationVar(&f.cfg.RedialAfter, "sim-redial", 0, "demo: a released agent gets a new call from the same number after this (0 = off)")
	fs.Float64Var(&f.faultRate, "sim-fault-rate", 0, "probability (0-1) that a disconnect gets a fault")
	fs.StringVar(&f.faultKinds, "sim-faults", "5xx,reset,timeout", "fault kinds: 5xx, reset, timeout, retcode, reset_after, timeout_after")
	fs.StringVar(&f.retcode, "sim-fault-retcodes", "000-004", "retcodes used by the retcode fault, comma separated")
}

func (f *simFlags) validate() error {
	if f.cfg.AuthMode != 1 && f.cfg.AuthMode != 2 {
		return fmt.Errorf("--sim-authmode (CALLCONTROL_SIM_AUTHMODE): must be 1 or 2, got %d", f.cfg.AuthMode)
	}
	if f.faultRate < 0 || f.faultRate > 1 {
		return fmt.Errorf("--sim-fault-rate (CALLCONTROL_SIM_FAULT_RATE): must be between 0 and 1, got %v", f.faultRate)
	}
	return nil
}

func (f *simFlags) faults() gatewaysim.Faults {
	var kinds []gatewaysim.Fault
	for _, k := range strings.Split(f.faultKinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, gatewaysim.Fault(k))
		}
	}
	return gatewaysim.Faults{Rate: f.faultRate, Kinds: kinds, RetCodes: strings.Split(f.retcode, ",")}
}

// start returns the simulator's server, listening (not serving yet: see
// gatewaysim.Server.Run), and writes its certificate to --gateway-cert-out
// if set.
func (f *simFlags) start() (*gatewaysim.Server, error) {
	sim := gatewaysim.New(f.cfg)
	sim.SetFaults(f.faults())
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("--gateway-listen (CALLCONTROL_GATEWAY_LISTEN): %w", err)
	}
	srv, err := gatewaysim.NewServer(sim, ln, gatewaysim.ServerConfig{PlainHTTP: f.plain})
	if err != nil {
		return nil, err
	}
	if f.certOut != "" && !f.plain {
		if err := os.WriteFile(f.certOut, srv.CertPEM(), 0o644); err != nil {
			srv.Close()
			return nil, fmt.Errorf("--gateway-cert-out (CALLCONTROL_GATEWAY_CERT_OUT): %w", err)
		}
	}
	return srv, nil
}

// runGatewaySim runs the simulator on its own.
func runGatewaySim(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("gatewaysim", stdout)
	var f simFlags
	f.register(s, "127.0.0.1:8043")
	s.fs.DurationVar(&f.cfg.NoPollSignOut, "sim-no-poll-signout", 2*time.Minute, "sign out agents not polled for this long (0 = never)")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	srv, err := f.start()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gateway simulator listening on %s\n", srv.URL())
	return srv.Run(ctx)
}
