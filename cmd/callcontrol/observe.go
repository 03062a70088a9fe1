package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// observability is one process's metrics registry (its own, not the
// global default) and what its GET /readyz checks.
type observability struct {
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	// streams /readyz requires to be reachable; when it holds the
	// dead-letter stream, its depth is exported too.
	streams []string
	// gatewayWindow: /readyz fails once the role's gateway requests have
	// got no HTTP answer for this long; 0: the gateway is not checked.
	gatewayWindow time.Duration
}

// newObservability builds the registry with the Go and process collectors
// and callcontrol's metrics.
func newObservability(streams []string, gatewayWindow time.Duration) (*observability, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m, err := metrics.New(reg)
	if err != nil {
		return nil, err
	}
	return &observability{reg: reg, metrics: m, streams: streams, gatewayWindow: gatewayWindow}, nil
}

// The streams each role needs, for /readyz.
var (
	workerStreams = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter}
	pollerStreams = []string{events.StreamEvents}
	devStreams    = []string{events.StreamCommands, events.StreamResults, events.StreamDeadLetter, events.StreamEvents}
)

// bind returns the readiness checks of the process's NATS connection and
// registers the dead-letter depth, read through js. Call it once.
func (o *observability) bind(nc *nats.Conn, js jetstream.JetStream) (readiness, error) {
	p := &streamProbe{js: js, streams: o.streams, every: probeEvery}
	r := readiness{nc: nc, streams: p.check}
	if slices.Contains(o.streams, events.StreamDeadLetter) {
		if err := metrics.RegisterDeadLetters(o.reg, p.deadLetters); err != nil {
			return r, err
		}
	}
	if o.gatewayWindow > 0 {
		m, window := o.metrics, o.gatewayWindow
		r.gateway = func(now time.Time) error {
			if d := m.GatewayUnanswered(now); d >= window {
				return fmt.Errorf("no answer for %s (readiness window %s)", d.Round(time.Second), window)
			}
			return nil
		}
	}
	return r, nil
}

const (
	// probeEvery is how long a stream probe's answer is reused.
	probeEvery = 5 * time.Second
	// probeTimeout bounds one round of stream info requests.
	probeTimeout = 2 * time.Second
)

// streamProbe tells whether the role's streams are reachable: one stream
// info request per stream, at most once per every (callers in between get
// the cached answer). The dead-letter depth comes from the same info.
type streamProbe struct {
	js      jetstream.JetStream
	streams []string
	every   time.Duration

	mu  sync.Mutex // held during a refresh: concurrent callers wait for it
	at  time.Time
	err error
	dlq float64
}

// check returns nil when every stream answered its info request.
func (p *streamProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < p.every {
		return p.err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	p.err = p.refresh(ctx)
	p.at = time.Now()
	return p.err
}

// refresh asks for each stream's info; the caller holds p.mu.
func (p *streamProbe) refresh(ctx context.Context) error {
	for _, name := range p.streams {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if name == events.StreamDeadLetter {
			p.dlq = float64(s.CachedInfo().State.Msgs)
		}
	}
	return nil
}

// deadLetters returns the dead-letter stream's depth: the last one read,
// refreshed first when older than every.
func (p *streamProbe) deadLetters() float64 {
	_ = p.check(context.Background())
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dlq
}
