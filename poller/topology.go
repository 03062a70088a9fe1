package poller

import "github.com/callcontrol/callcontrol/internal/topology"

// Topology returns the pollers' part of the JetStream topology that this
// configuration runs with (after defaults): the membership and lease
// bucket's TTL, which must be cfg.LeaseTTL. A poller process provisions
// topology.Shared|topology.Pollers with it before [New]; the default is
// topology.DefaultPollLeaseTTL.
func (c Config) Topology() topology.PollersConfig {
	return topology.PollersConfig{LeaseTTL: c.withDefaults().LeaseTTL}
}
