package health

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

// Observability is one process's metrics registry (its own, not the
// global default) and what its GET /readyz checks.
type Observability struct {
	// Registry holds the Go and process collectors and Metrics; /metrics
	// serves it.
	Registry *prometheus.Registry
	// Metrics are callcontrol's metrics, for the worker and the poller.
	Metrics *metrics.Metrics
	// Streams are the streams /readyz requires to be reachable; when they
	// include the dead-letter stream, its depth is exported too.
	Streams []string
	// GatewayWindow: /readyz fails once the role's gateway requests have
	// got no HTTP answer for this long; 0: the gateway is not checked.
	GatewayWindow time.Duration
}

// NewObservability builds the registry with the Go and process
// collectors and callcontrol's metrics.
func NewObservability(streams []string, gatewayWindow time.Duration) (*Observability, error) {
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
	return &Observability{Registry: reg, Metrics: m, Streams: streams, GatewayWindow: gatewayWindow}, nil
}

// Bind returns the readiness checks of the process's NATS connection and
// registers the dead-letter depth, read through js. Call it once: a second
// call fails to register the depth again.
func (o *Observability) Bind(nc *nats.Conn, js jetstream.JetStream) (Readiness, error) {
	p := &streamProbe{js: js, streams: o.Streams, every: probeEvery}
	r := Readiness{Conn: nc, Streams: p.check}
	if slices.Contains(o.Streams, events.StreamDeadLetter) {
		if err := metrics.RegisterDeadLetters(o.Registry, p.deadLetters); err != nil {
			return r, err
		}
	}
	if o.GatewayWindow > 0 {
		m, window := o.Metrics, o.GatewayWindow
		r.Gateway = func(now time.Time) error {
			if d := m.GatewayUnanswered(now); d >= window {
				return fmt.Errorf("no answer for %s (readiness window %s)", d.Round(time.Second), window)
			}
			return nil
		}
	}
	return r, nil
}

// StartLate serves the endpoint (see [Start]) before the NATS connection
// exists: /readyz answers 503 until bind is called with the connection,
// which binds o to it (see [Observability.Bind]).
func (o *Observability) StartLate(ctx context.Context, cfg Config) (stop func(), bind func(*nats.Conn, jetstream.JetStream) error, err error) {
	late := &LateReadiness{}
	stop, err = Start(ctx, cfg, late, o.Registry)
	if err != nil {
		return nil, nil, err
	}
	bind = func(nc *nats.Conn, js jetstream.JetStream) error {
		r, err := o.Bind(nc, js)
		if err != nil {
			return err
		}
		late.Set(r)
		return nil
	}
	return stop, bind, nil
}

// StartBound binds o to the process's NATS connection and serves the
// endpoint (see [Start]).
func (o *Observability) StartBound(ctx context.Context, cfg Config, nc *nats.Conn, js jetstream.JetStream) (stop func(), err error) {
	r, err := o.Bind(nc, js)
	if err != nil {
		return nil, err
	}
	return Start(ctx, cfg, r, o.Registry)
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
