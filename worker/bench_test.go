package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Benchmarks report throughput as ratios to baselines measured in the same
// run, on the same machine, against the same servers: absolute numbers on a
// shared machine are noise. Run them with `make bench` (-benchtime=1x: each
// benchmark is one fixed-size run).

// BenchmarkCeiling: commands/s through the whole pipeline (publish ->
// worker -> POST -> ack -> result published) with an instant gateway,
// divided by a bare HTTP POST loop of the same concurrency against the same
// simulator, and by raw JetStream publish + consume + ack of as many
// messages. Target: ratio_http >= 0.5.
func BenchmarkCeiling(b *testing.B) {
	const n, conc = 2000, 64
	cfg := testConfig()
	cfg.Concurrency = conc
	bu := setup(b, cfg, gatewaysim.Config{})
	guids := bu.signIn(agentsFrom(101, 2*n), customer)
	warm(bu.gw, conc)
	b.ResetTimer()
	for range b.N {
		http := bareHTTP(b, bu.gw, guids, agentsFrom(101+n, n), conc)
		raw := rawJetStream(b, bu, n, conc)
		pipe := pipeline(b, bu, agentsFrom(101, n))
		b.ReportMetric(pipe, "pipeline_cmd/s")
		b.ReportMetric(http, "http_req/s")
		b.ReportMetric(raw, "jetstream_msg/s")
		b.ReportMetric(pipe/http, "ratio_http")
		b.ReportMetric(pipe/raw, "ratio_jetstream")
	}
}

// BenchmarkPipelining: with a gateway that takes 50 ms per request and 256
// commands in flight, throughput divided by the ideal 256/0.05 s. Target
// >= 0.9.
func BenchmarkPipelining(b *testing.B) {
	const conc, latency = 256, 50 * time.Millisecond
	const n = conc * 12
	cfg := testConfig()
	cfg.Concurrency = conc
	bu := setup(b, cfg, gatewaysim.Config{Latency: latency})
	bu.signIn(agentsFrom(101, n), customer)
	warm(bu.gw, conc)
	b.ResetTimer()
	for range b.N {
		got := pipeline(b, bu, agentsFrom(101, n))
		ideal := float64(conc) / latency.Seconds()
		b.ReportMetric(got, "cmd/s")
		b.ReportMetric(got/ideal, "ratio_ideal")
	}
}

// BenchmarkDecodeValidate is the per-command decoding cost on the hot path.
func BenchmarkDecodeValidate(b *testing.B) {
	data, _ := json.Marshal(events.DisconnectCommand{CommandID: "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10", AgentID: 4711,
		Number: "13800001234", IssuedAt: time.Now(), TTL: 30 * time.Second, CorrelationID: "crm-case-4711"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.DecodeDisconnect(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultEncode is the per-command cost of building and encoding
// the result event.
func BenchmarkResultEncode(b *testing.B) {
	r := events.Result{CommandID: "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10", AgentID: 4711, Number: "13800001234",
		Status: events.StatusAccepted, RetCode: "0", Attempts: 1, IssuedAt: time.Now(), CompletedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

// warm opens conc pooled connections to the gateway, so that no run pays
// for TLS handshakes the others do not.
func warm(gw *gateway.Client, conc int) {
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = gw.Disconnect(context.Background(), 59999, "1", "warm-up") // 100-006: no session
		}()
	}
	wg.Wait()
}

// pipeline runs one worker over one command per agent and returns the
// commands/s from the first publish to the last result.
func pipeline(b *testing.B, bu *bundle, agents []int) float64 {
	b.Helper()
	stop, _ := bu.startWorker(nil)
	defer stop()
	before := resultCount(b, bu)
	start := time.Now()
	publishAsync(b, bu.js, len(agents), func(i int) *nats.Msg {
		a := agents[i]
		data, _ := json.Marshal(events.DisconnectCommand{CommandID: fmt.Sprintf("b-%d-%d", start.UnixNano(), a), AgentID: a, Number: customer(a), TTL: time.Minute})
		m := nats.NewMsg(events.SubjectDisconnect)
		m.Data = data
		return m
	})
	waitFor(b, 5*time.Minute, "all results", func() bool { return resultCount(b, bu)-before >= uint64(len(agents)) })
	return float64(len(agents)) / time.Since(start).Seconds()
}

// bareHTTP POSTs one disconnect per agent with conc goroutines and returns
// requests/s.
func bareHTTP(b *testing.B, gw *gateway.Client, guids map[int]string, agents []int, conc int) float64 {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(agents); i = int(next.Add(1) - 1) {
				if err := gw.Disconnect(context.Background(), agents[i], customer(agents[i]), guids[agents[i]]); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	return float64(len(agents)) / time.Since(start).Seconds()
}

// rawJetStream publishes n messages to a scratch stream and consumes and
// acks them with conc one-message pulls, as the worker does; messages/s.
func rawJetStream(b *testing.B, bu *bundle, n, conc int) float64 {
	b.Helper()
	ctx := context.Background()
	s, err := bu.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw"}})
	if err != nil {
		b.Fatal(err)
	}
	_ = s.Purge(ctx)
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 4096})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 200)
	var done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(n) {
				batch, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
				if err != nil {
					continue
				}
				for m := range batch.Messages() {
					if err := m.Ack(); err == nil {
						done.Add(1)
					}
				}
			}
		}()
	}
	publishAsync(b, bu.js, n, func(int) *nats.Msg { return &nats.Msg{Subject: "bench.raw", Data: payload} })
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

func publishAsync(b *testing.B, js jetstream.JetStream, n int, msg func(i int) *nats.Msg) {
	b.Helper()
	for i := range n {
		if _, err := js.PublishMsgAsync(msg(i)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish acks did not arrive")
	}
}

func resultCount(b *testing.B, bu *bundle) uint64 {
	b.Helper()
	s, err := bu.js.Stream(context.Background(), events.StreamResults)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.Msgs
}
