package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// table turns the measurements into rows: value, baseline, ratio, target.
func (r *Report) table() []Row {
	var rows []Row
	rows = append(rows, ceilingRows(r.Ceiling)...)
	rows = append(rows, apiRows(r.API)...)
	rows = append(rows, pipeRows(r.Sizes.SlowGateway, r.Pipelining)...)
	rows = append(rows, latencyRows(r.Latency)...)
	rows = append(rows, confirmRows(r.Confirm)...)
	return append(rows, pollerRows(r.Poller)...)
}

func met(ok bool) *bool { return &ok }

// ceilingRows are the ceiling's rows (none without c).
func ceilingRows(c *CeilingResult) []Row {
	if c == nil {
		return nil
	}
	var rows []Row
	rows = append(rows,
		Row{Measure: fmt.Sprintf("ceiling, %d in flight: pipeline vs bare HTTP POST loop", c.Concurrency),
			Value: rate(c.Pipeline, "cmd/s"), Baseline: rate(c.BareHTTP, "req/s"), Ratio: c.RatioHTTP, Target: ">= 0.5", Met: met(c.RatioHTTP >= 0.5)},
		Row{Measure: "ceiling: pipeline vs raw JetStream consume+ack",
			Value: rate(c.Pipeline, "cmd/s"), Baseline: rate(c.RawJetStream, "msg/s"), Ratio: c.RatioJetStream},
		Row{Measure: "ceiling: pipeline vs the worker's 6 JetStream writes per command alone (no gateway)",
			Value: rate(c.Pipeline, "cmd/s"), Baseline: rate(c.Writes, "cmd/s"), Ratio: c.RatioWrites},
		Row{Measure: "ceiling bound: the least any worker does (consume, POST, result, ack; no lease, no ledger) vs bare HTTP POST loop",
			Value: rate(c.ExecuteOnly, "cmd/s"), Baseline: rate(c.BareHTTP, "req/s"), Ratio: c.RatioExecute},
		Row{Measure: "ceiling bound: the same plus one ledger write before the POST (the least that never sends twice after a crash) vs bare HTTP POST loop",
			Value: rate(c.ExecuteLedger, "cmd/s"), Baseline: rate(c.BareHTTP, "req/s"), Ratio: c.RatioLedger},
		Row{Measure: "ceiling: CPU per command, worker process", Value: fmt.Sprintf("%d µs", c.WorkerCPU)},
		Row{Measure: "ceiling: CPU per command, NATS server + simulator + publisher", Value: fmt.Sprintf("%d µs", c.ServerCPU)},
	)
	if cc := c.CallCheck; cc != nil {
		rows = append(rows,
			Row{Measure: "ceiling, call check: commands with call_id (fresh call state) vs --skip-call-check (call_scoped_ratio)",
				Value: rate(cc.CallID, "cmd/s"), Baseline: rate(cc.Skip, "cmd/s"), Ratio: cc.RatioCallID, Target: ">= 0.9", Met: met(cc.RatioCallID >= 0.9)},
			Row{Measure: "ceiling, call check: plain commands (fresh call state) vs --skip-call-check (call_scoped_plain_ratio)",
				Value: rate(cc.Plain, "cmd/s"), Baseline: rate(cc.Skip, "cmd/s"), Ratio: cc.RatioPlain},
			Row{Measure: "ceiling, call check: plain commands, no call state (call-info query per attempt) vs --skip-call-check (call_info_ratio)",
				Value: rate(cc.CallInfo, "cmd/s"), Baseline: rate(cc.Skip, "cmd/s"), Ratio: cc.RatioCallInfo},
			Row{Measure: "ceiling, call check: worker CPU per command, plain / call_id / no call state / --skip-call-check",
				Value: fmt.Sprintf("%d / %d / %d / %d µs", c.WorkerCPU, c.WorkerCPUCallID, c.WorkerCPUCallInfo, c.WorkerCPUSkip)},
		)
	}
	return rows
}

// apiRows are the api scenario's rows (none without a).
func apiRows(a *APIResult) []Row {
	if a == nil {
		return nil
	}
	return []Row{
		{Measure: fmt.Sprintf("api, %d in flight: POST /v1/disconnects with Prefer: wait vs NATS submit-and-await, admin.Client.Submit (api_ratio)", a.Concurrency),
			Value: rate(a.API, "cmd/s"), Baseline: rate(a.NATS, "cmd/s"), Ratio: a.Ratio, Target: ">= 0.8", Met: met(a.Ratio >= 0.8)},
		{Measure: "api: accepted / confirmed / commands, both paths", Value: fmt.Sprintf("%d / %d / %d", a.Accepted, a.Confirmed, 2*a.Commands)},
	}
}

// pipeRows are the pipelining levels' rows, with a gateway slow by slow.
func pipeRows(slow time.Duration, ps []PipeResult) []Row {
	var rows []Row
	for _, p := range ps {
		row := Row{Measure: fmt.Sprintf("pipelining, %v gateway, %d in flight (steady state)", slow, p.InFlight),
			Value: rate(p.PerS, "cmd/s"), Baseline: rate(p.Ideal, "cmd/s ideal"), Ratio: p.Ratio}
		if p.InFlight == maxLevel(ps) {
			row.Target, row.Met = ">= 0.9", met(p.Ratio >= 0.9)
		}
		rows = append(rows, row)
	}
	if n := len(ps); n > 0 {
		p := ps[n-1]
		rows = append(rows, Row{Measure: fmt.Sprintf("pipelining, %d in flight: worker vs bare HTTP POSTs, %d in flight (steady state)", p.InFlight, p.InFlight),
			Value: rate(p.PerS, "cmd/s"), Baseline: rate(p.BareHTTP, "req/s"), Ratio: p.RatioHTTP})
		if p.ExecuteOnly > 0 {
			rows = append(rows,
				Row{Measure: fmt.Sprintf("pipelining bound, %d in flight: the least any worker does (consume, POST, result, ack)", p.InFlight),
					Value: rate(p.ExecuteOnly, "cmd/s"), Baseline: rate(p.Ideal, "cmd/s ideal"), Ratio: p.ExecuteOnly / p.Ideal},
				Row{Measure: fmt.Sprintf("pipelining bound, %d in flight: the same plus one ledger write before the POST", p.InFlight),
					Value: rate(p.ExecuteLedger, "cmd/s"), Baseline: rate(p.Ideal, "cmd/s ideal"), Ratio: p.ExecuteLedger / p.Ideal})
		}
		rows = append(rows, Row{Measure: fmt.Sprintf("worker memory at %d in flight (peak RSS)", p.InFlight), Value: mib(p.PeakRSS)})
	}
	return rows
}

// latencyRows are the latency scenario's rows (none without l).
func latencyRows(l *LatencyResult) []Row {
	if l == nil {
		return nil
	}
	var rows []Row
	rows = append(rows,
		Row{Measure: fmt.Sprintf("latency at %d cmd/s, publish -> POST: p50", l.Rate), Value: ms(l.Worker.P50),
			Baseline: ms(l.Raw.P50) + " raw publish->consume", Ratio: l.RatioP50},
		Row{Measure: fmt.Sprintf("latency at %d cmd/s, publish -> POST: p99", l.Rate), Value: ms(l.Worker.P99),
			Baseline: ms(l.Raw.P99) + " raw publish->consume", Ratio: l.RatioP99, Target: "<= 3", Met: met(l.RatioP99 <= 3)},
		Row{Measure: "latency bound: the least any worker does (no round trip before the POST): p99", Value: ms(l.Floor.P99),
			Baseline: ms(l.Raw.P99) + " raw publish->consume", Ratio: float64(l.Floor.P99) / float64(l.Raw.P99)},
		Row{Measure: "latency bound: the same plus one ledger write before the POST: p99", Value: ms(l.FloorLedger.P99),
			Baseline: ms(l.Raw.P99) + " raw publish->consume", Ratio: float64(l.FloorLedger.P99) / float64(l.Raw.P99)},
	)
	if cc := l.CallCheckP99; cc != nil {
		vs := func(p Percentiles) string { return fmt.Sprintf("%s (p50 %s)", ms(p.P99), ms(p.P50)) }
		rows = append(rows,
			Row{Measure: "latency, call check: p99 of commands with call_id (fresh call state) vs --skip-call-check (call_scoped_p99_ratio)",
				Value: vs(l.CallID), Baseline: vs(l.Skip), Ratio: cc.RatioCallID},
			Row{Measure: "latency, call check: p99 of plain commands (fresh call state) vs --skip-call-check (call_scoped_plain_p99_ratio)",
				Value: vs(l.Worker), Baseline: vs(l.Skip), Ratio: cc.RatioPlain},
			Row{Measure: "latency, call check: p99 of plain commands, no call state (call-info query) vs --skip-call-check (call_info_p99_ratio)",
				Value: vs(l.CallInfo), Baseline: vs(l.Skip), Ratio: cc.RatioCallInfo},
		)
	}
	if w := l.CheckWindow; w != nil {
		q := func(w WindowQuantiles) string {
			return fmt.Sprintf("p50 ≤ %v, p99 ≤ %v, max ≤ %v (%d)", w.P50, w.P99, w.Max, w.N)
		}
		rows = append(rows,
			Row{Measure: "latency, the window no call check closes: no call state, from the call-info query's sending to the disconnect's answer",
				Value: q(w.CallInfo)},
			Row{Measure: "latency, the window no call check closes: fresh call state, from the check to the disconnect's answer (plus the state's age, at most --call-state-max-age)",
				Value: q(w.AfterCheck)},
		)
	}
	return rows
}

// confirmRows are the confirmation scenario's rows (none without c).
func confirmRows(c *ConfirmResult) []Row {
	if c == nil {
		return nil
	}
	var rows []Row
	rows = append(rows,
		Row{Measure: fmt.Sprintf("confirmation, %d agents polled: release event -> confirmation p50", c.Agents), Value: ms(c.Latency.P50)},
		Row{Measure: "confirmation: p99", Value: ms(c.Latency.P99), Target: "<= " + ms(c.Target),
			Met: met(c.Latency.N > 0 && c.Latency.P99 <= c.Target)},
		Row{Measure: "confirmation: confirmed / disconnects", Value: fmt.Sprintf("%d / %d", c.Confirmed, c.Agents),
			Target: "all", Met: met(c.Confirmed == c.Agents)},
	)
	return rows
}

// pollerRows are the poller scenario's rows (none without p).
func pollerRows(p *PollerResult) []Row {
	if p == nil {
		return nil
	}
	var rows []Row
	g := "n/a"
	if p.Stats.Goroutines >= 0 {
		g = fmt.Sprint(p.Stats.Goroutines)
	}
	rows = append(rows,
		Row{Measure: fmt.Sprintf("poller, %d agents idle-polled: CPU", p.Agents), Value: fmt.Sprintf("%.2f cores", p.Cores),
			Target: "< 1", Met: met(p.Cores < 1)},
		Row{Measure: "poller: RSS", Value: mib(p.Stats.RSS), Target: "< 1 GiB", Met: met(p.Stats.RSS < 1<<30)},
		Row{Measure: "poller: goroutines / threads / sockets", Value: fmt.Sprintf("%s / %d / %d", g, p.Stats.Threads, p.Stats.Sockets)},
		Row{Measure: fmt.Sprintf("poller: agents polled again within %v", p.Window.Round(100*time.Millisecond)),
			Value: fmt.Sprintf("%.1f%%", 100*p.PolledEveryHold), Target: "100%", Met: met(p.PolledEveryHold == 1)},
	)
	return rows
}

func maxLevel(ps []PipeResult) int {
	m := 0
	for _, p := range ps {
		m = max(m, p.InFlight)
	}
	return m
}

func rate(v float64, unit string) string { return fmt.Sprintf("%.0f %s", v, unit) }
func mib(b int64) string                 { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
func ms(d time.Duration) string          { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Markdown is the table as printed and committed (docs/bench/results.md).
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "callcontrol bench %s, %s, %d CPUs, %s\n\n", r.Version, r.GoVersion, r.CPUs, r.Started.Format(time.RFC3339))
	b.WriteString("| measure | value | baseline (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		ratio, met := "", ""
		if row.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f", row.Ratio)
		}
		if row.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*row.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Measure, row.Value, row.Baseline, ratio, row.Target, met)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\nfailed: %s\n", f)
	}
	return b.String()
}

// The chart's size and margin, in pixels.
const svgWidth, svgHeight, svgPad = 880, 340, 56

// SVG draws two panels: throughput against commands in flight with a slow
// gateway (measured and ideal), and latency percentiles.
func (r *Report) SVG() string {
	const w, h, pad = svgWidth, svgHeight, svgPad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13">callcontrol bench %s (%d CPUs)</text>`+"\n", pad, esc(r.Version), r.CPUs)

	pw, ph := float64(w/2-pad-20), float64(h-2*pad)
	r.throughputPanel(&b, float64(pad), float64(h-pad), pw, ph)
	r.latencyPanel(&b, float64(w/2+pad), float64(h-pad), pw, ph)
	b.WriteString("</svg>\n")
	return b.String()
}

// throughputPanel draws throughput against commands in flight (log2 x,
// linear y): the worker, the bare POST loop and the ideal.
func (r *Report) throughputPanel(b *strings.Builder, x0, y0, pw, ph float64) {
	fmt.Fprintf(b, `<text x="%.0f" y="%d">throughput vs in flight (gateway %v per request)</text>`+"\n", x0, svgPad-14, r.Sizes.SlowGateway)
	axes(b, x0, y0, pw, ph)
	if ps := r.Pipelining; len(ps) > 0 {
		lo, hi := math.Log2(float64(ps[0].InFlight)), math.Log2(float64(ps[len(ps)-1].InFlight))
		top := 0.0
		for _, p := range ps {
			top = max(top, p.Ideal, p.PerS, p.BareHTTP)
		}
		x := func(m int) float64 {
			if hi == lo {
				return x0 + pw/2
			}
			return x0 + (math.Log2(float64(m))-lo)/(hi-lo)*pw
		}
		y := func(v float64) float64 { return y0 - v/top*ph }
		line := func(val func(PipeResult) float64, style string) {
			var pts []string
			for _, p := range ps {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.InFlight), y(val(p))))
			}
			fmt.Fprintf(b, `<polyline fill="none" %s points="%s"/>`+"\n", style, strings.Join(pts, " "))
		}
		line(func(p PipeResult) float64 { return p.Ideal }, `stroke="#999" stroke-dasharray="4 3"`)
		line(func(p PipeResult) float64 { return p.BareHTTP }, `stroke="#ff7f0e" stroke-dasharray="6 2"`)
		line(func(p PipeResult) float64 { return p.PerS }, `stroke="#1f77b4" stroke-width="2"`)
		for _, p := range ps {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1f77b4"/>`+"\n", x(p.InFlight), y(p.PerS))
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", x(p.InFlight), y0+16, p.InFlight)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>`+"\n", x(p.InFlight), y(p.PerS)-8, p.Ratio)
		}
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end" font-size="10">%.0f cmd/s</text>`+"\n", x0+pw, y0-ph-4, top)
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">commands in flight (label: ratio to ideal)</text>`+"\n", x0+pw/2, y0+34)
		legend(b, x0+8, y0-ph+12, [][2]string{{"#1f77b4", "worker (steady state)"}, {"#ff7f0e", "bare HTTP POSTs, same in flight"},
			{"#999", "ideal: in flight / latency"}})
	}
}

// latencyPanel draws the latency percentiles (p50 and p99 bars, log scale).
func (r *Report) latencyPanel(b *strings.Builder, x0, y0, pw, ph float64) {
	fmt.Fprintf(b, `<text x="%.0f" y="%d">latency percentiles (ms, log scale)</text>`+"\n", x0, svgPad-14)
	axes(b, x0, y0, pw, ph)
	type bar struct {
		label string
		p     Percentiles
	}
	var bars []bar
	if l := r.Latency; l != nil {
		bars = append(bars, bar{"raw JetStream", l.Raw}, bar{"publish->POST", l.Worker})
	}
	if c := r.Confirm; c != nil {
		bars = append(bars, bar{"event->confirm", c.Latency})
	}
	if len(bars) > 0 {
		const floor = 0.01 // ms, the bottom of the scale
		top := floor * 10
		for _, br := range bars {
			top = max(top, float64(br.p.P99)/1e6)
		}
		lt := math.Log10(top*2) - math.Log10(floor)
		y := func(msv float64) float64 { return y0 - (math.Log10(max(msv, floor))-math.Log10(floor))/lt*ph }
		slot := pw / float64(len(bars))
		for i, br := range bars {
			cx := x0 + slot*float64(i) + slot/2
			for j, v := range []struct {
				d     time.Duration
				color string
			}{{br.p.P50, "#2ca02c"}, {br.p.P99, "#d62728"}} {
				bx := cx - 22 + float64(j)*22
				val := float64(v.d) / 1e6
				fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="20" height="%.1f" fill="%s"/>`+"\n", bx, y(val), y0-y(val), v.color)
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>`+"\n", bx+10, y(val)-4, val)
			}
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", cx, y0+16, br.label)
		}
		legend(b, x0+8, y0-ph+12, [][2]string{{"#2ca02c", "p50"}, {"#d62728", "p99"}})
	}
}

func axes(b *strings.Builder, x0, y0, w, h float64) {
	fmt.Fprintf(b, `<path d="M%.0f %.0f V%.0f H%.0f" fill="none" stroke="black"/>`+"\n", x0, y0-h, y0, x0+w)
}

func legend(b *strings.Builder, x, y float64, items [][2]string) {
	for i, it := range items {
		yy := y + float64(i)*16
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", x, yy-9, it[0], x+14, yy, it[1])
	}
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
