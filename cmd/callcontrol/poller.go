package main

import (
	"context"
	"io"

	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/poller"
	"github.com/nats-io/nats.go/jetstream"
)

// pollerFlags are the poller's settings.
func pollerFlags(s *settings, c *poller.Config) {
	fs, d := s.fs, poller.DefaultConfig()
	fs.DurationVar(&c.LeaseTTL, "poll-lease-ttl", d.LeaseTTL, "per-agent poll lease TTL: how long a dead poller's agents wait to be taken over")
	fs.DurationVar(&c.PollGap, "poll-gap", d.PollGap, "pause after an empty poll")
	fs.DurationVar(&c.ReleaseGrace, "release-grace", d.ReleaseGrace, "how long a release event waits for the worker's pending record")
	fs.DurationVar(&c.CallStateRefresh, "call-state-refresh", d.CallStateRefresh,
		"during a call, how often the agent's call state is rewritten to advance its observed_at while a poll is outstanding")
	s.fieldFlags(map[string]string{"LeaseTTL": "poll-lease-ttl", "PollGap": "poll-gap", "ReleaseGrace": "release-grace",
		"CallStateRefresh": "call-state-refresh"})
}

// runPoller runs one poller replica.
func runPoller(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("poller", stdout)
	var (
		rf   roleFlags
		pcfg poller.Config
		gcfg gateway.Config
	)
	rf.register(s)
	pollerFlags(s, &pcfg)
	gatewayFlags(s, &gcfg)
	connection := s.group(groupConnection)
	s.fs.DurationVar(&gcfg.PollTimeout, "gateway-poll-timeout", gateway.DefaultPollTimeout, "HTTP timeout of one long poll (above the gateway's ~10 s hold)")
	s.fs.IntVar(&gcfg.MaxConns, "gateway-max-conns", 10000, "connections to the gateway: each agent's long poll holds one, so at least the agents one replica polls")
	connection()
	s.fieldFlags(map[string]string{"PollTimeout": "gateway-poll-timeout", "MaxConns": "gateway-max-conns"})
	if err := s.parse(args); err != nil {
		return err
	}
	log, err := rf.lf.logger(stderr)
	if err != nil {
		return err
	}
	obs, err := health.NewObservability(pollerStreams, 2*gcfg.PollTimeout)
	if err != nil {
		return err
	}
	rf.nf.log = &log // WARN lines about risky settings, in the role's log format
	pcfg.Logger, pcfg.PollTimeout, pcfg.Metrics = log, gcfg.PollTimeout, obs.Metrics
	if err := pcfg.Validate(); err != nil {
		return s.explain(err)
	}
	tp, stopTracing, err := rf.tf.provider(stdout, "poller", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	pcfg.TracerProvider = tp
	topo := topology.Config{Pollers: pcfg.Topology()}
	return serveRole(ctx, "poller", s, &rf.nf, &rf.hf, obs, gcfg, topo, topology.Pollers, func(ctx context.Context, js jetstream.JetStream, gw *gateway.Client) error {
		p, err := poller.New(pcfg, js, gw)
		if err != nil {
			return s.explain(err)
		}
		return p.Run(ctx)
	})
}
