package metrics

import (
	"sync/atomic"
	"time"
)

// gatewaySeen tracks whether the gateway answers: the time of the last
// HTTP answer, and the start of the current run of requests that got none.
// Concurrent requests may race (an answer and a failure ending together);
// the next request that ends corrects it.
type gatewaySeen struct {
	lastAnswer   atomic.Int64 // unix nanos; 0: none yet
	failingSince atomic.Int64 // unix nanos; 0: the last request that ended got an answer
}

func (g *gatewaySeen) answered(now time.Time) {
	g.lastAnswer.Store(now.UnixNano())
	g.failingSince.Store(0)
}

func (g *gatewaySeen) unanswered(now time.Time) {
	g.failingSince.CompareAndSwap(0, now.UnixNano())
}

func (g *gatewaySeen) failingFor(now time.Time) time.Duration {
	since := g.failingSince.Load()
	if since == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

func (g *gatewaySeen) lastAnswerSeconds() float64 {
	ns := g.lastAnswer.Load()
	if ns == 0 {
		return 0
	}
	return float64(ns) / 1e9
}
