package worker

import "github.com/callcontrol/callcontrol/internal/topology"

// Topology returns the workers' part of the JetStream topology that this
// configuration runs with (after defaults): the consumers' AckWait and
// MaxDeliver and the lease bucket's TTL. A worker process provisions
// topology.Shared|topology.Workers with it before [New]; the defaults of
// these fields are topology's (DefaultAckWait, DefaultMaxDeliver,
// DefaultWorkerLeaseTTL).
func (c Config) Topology() topology.WorkersConfig {
	c = c.withDefaults()
	return topology.WorkersConfig{AckWait: c.AckWait, MaxDeliver: c.MaxDeliver, LeaseTTL: c.LeaseTTL}
}
