//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsembed"
)

// The real parts of a soak run: an embedded nats-server that can be
// restarted on the same port and store, the simulator over HTTPS in this
// process (with a wrapper that collects every GUID it hands out and can
// slow its answers down), and worker, poller and dlq replay processes of
// the callcontrol binary.

// natsNode is the embedded nats-server.
type natsNode struct {
	mu  sync.Mutex
	cfg natsembed.Config
	ns  *natsembed.Server
}

func startNATS(dir string) (*natsNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &natsNode{cfg: natsembed.Config{
		Listen: fmt.Sprintf("127.0.0.1:%d", port), DataDir: filepath.Join(dir, "jetstream"), ServerName: "soak",
		MaxStore: 4 << 30, MaxMemory: 256 << 20, ReadyTimeout: 20 * time.Second,
	}}
	return n, n.start()
}

func (n *natsNode) start() error {
	ns, err := natsembed.Start(n.cfg)
	if err != nil {
		return fmt.Errorf("soak: nats-server on %s: %w", n.cfg.Listen, err)
	}
	n.mu.Lock()
	n.ns = ns
	n.mu.Unlock()
	return nil
}

func (n *natsNode) stop() {
	n.mu.Lock()
	ns := n.ns
	n.ns = nil
	n.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
	}
}

// restart shuts the server down, waits pause and starts it again on the
// same port and store (retrying while the port is not free yet).
func (n *natsNode) restart(pause time.Duration) error {
	n.stop()
	time.Sleep(pause) // the outage itself
	var err error
	for range 20 {
		if err = n.start(); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

func (n *natsNode) url() string { return "nats://" + n.cfg.Listen }

// gatewaySim is the simulator behind its HTTPS server.
type gatewaySim struct {
	sim    *gatewaysim.Sim
	srv    *gatewaysim.Server
	done   chan error
	caFile string
	slow   atomic.Int64 // extra latency (ns) before answering a non-poll request
	mu     sync.Mutex
	guids  map[string]bool // every GUID seen in a Set-GUID header
}

func startSim(dir string, cfg gatewaysim.Config) (*gatewaySim, error) {
	g := &gatewaySim{sim: gatewaysim.New(cfg), guids: map[string]bool{}, done: make(chan error, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// The hijacking reset faults need HTTP/1.
	g.srv, err = gatewaysim.NewServer(g.sim, ln, gatewaysim.ServerConfig{Handler: http.HandlerFunc(g.serve), HTTP1Only: true})
	if err != nil {
		return nil, err
	}
	go func() { g.done <- g.srv.Run(context.Background()) }()
	g.caFile = filepath.Join(dir, "gateway-ca.pem")
	if err := os.WriteFile(g.caFile, g.srv.CertPEM(), 0o600); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// close closes the simulator (releasing held polls and fault holds) and
// its server.
func (g *gatewaySim) close() {
	_ = g.srv.Close()
	<-g.done
}

func (g *gatewaySim) url() string { return g.srv.URL() }

// serve passes every request to the simulator through a writer that notes
// the GUIDs it hands out and delays non-poll answers while a "slow" fault
// is on.
func (g *gatewaySim) serve(w http.ResponseWriter, r *http.Request) {
	sw := &sniffWriter{ResponseWriter: w, g: g}
	if !strings.Contains(r.URL.Path, "/agentevent/") {
		sw.delay = time.Duration(g.slow.Load())
	}
	g.sim.ServeHTTP(sw, r)
}

func (g *gatewaySim) noteGUID(v string) {
	v, _, _ = strings.Cut(v, ";")
	v = strings.TrimPrefix(strings.TrimSpace(v), "JSESSIONID=")
	if v == "" {
		return
	}
	g.mu.Lock()
	g.guids[v] = true
	g.mu.Unlock()
}

// secrets returns every GUID seen so far.
func (g *gatewaySim) secrets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.guids))
	for v := range g.guids {
		out = append(out, v)
	}
	return out
}

type sniffWriter struct {
	http.ResponseWriter
	g       *gatewaySim
	delay   time.Duration
	written bool
}

func (w *sniffWriter) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.g.noteGUID(w.Header().Get("Set-GUID"))
		if w.delay > 0 {
			time.Sleep(w.delay) // a slow answer: the release already happened
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sniffWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the reset
// faults hijack it) and the flusher.
func (w *sniffWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logSink collects every line every process wrote, and copies them to a
// file per process for a human reading a failed run.
type logSink struct {
	mu    sync.Mutex
	lines []string
	dir   string
}

func (l *logSink) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *logSink) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// writer returns a writer that splits what it gets into lines for the sink
// and appends it to <dir>/<name>.log.
func (l *logSink) writer(name string) io.WriteCloser {
	f, _ := os.OpenFile(filepath.Join(l.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l.add(sc.Text())
			if f != nil {
				fmt.Fprintln(f, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		if f != nil {
			f.Close()
		}
	}()
	return &lineWriter{pw: pw, done: done}
}

type lineWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func (w *lineWriter) Write(b []byte) (int, error) { return w.pw.Write(b) }
func (w *lineWriter) Close() error                { err := w.pw.Close(); <-w.done; return err }

// proc is one worker or poller process; restarted processes keep their
// name (worker-1 ...) and get a new health port.
type proc struct {
	name, role string
	args       []string
	health     string
	cmd        *exec.Cmd
	out        io.WriteCloser
	done       chan struct{}
	intended   bool // the next exit is a fault or the end of the run (runner.mu)
}

type launcher struct {
	bin  string
	env  []string
	logs *logSink
	// metrics collects /metrics pages scraped from processes before they
	// are stopped and at the end.
	mu      sync.Mutex
	metrics []string
}

// childEnv is this process's environment without CALLCONTROL_ settings,
// which would change the children's flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLCONTROL_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs `callcontrol <role> args...` and waits until /readyz answers.
func (l *launcher) start(ctx context.Context, p *proc) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p.health = fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{p.role, "--health-listen", p.health, "--log-format", "json"}, p.args...)
	p.cmd = exec.Command(l.bin, args...)
	p.cmd.Env = l.env
	p.out = l.logs.writer(p.name)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.out.Close()
		return err
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); p.out.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ok, _ := httpOK("http://" + p.health + "/readyz"); ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("soak: %s exited at start (%s)", p.name, p.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: %s not ready after 60s", p.name)
		}
	}
}

func (p *proc) exited() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits for the process to end (SIGKILL after 60 s).
func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// scrape keeps the process's /metrics page.
func (l *launcher) scrape(p *proc) {
	if p.exited() {
		return
	}
	resp, err := http.Get("http://" + p.health + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	l.mu.Lock()
	l.metrics = append(l.metrics, fmt.Sprintf("# soak: %s pid %d\n%s", p.name, p.cmd.Process.Pid, b))
	l.mu.Unlock()
}

// run runs a short-lived callcontrol command (dlq replay) and returns its
// output; its lines also go to the log sink.
func (l *launcher) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	out := l.logs.writer(name)
	cmd := exec.CommandContext(ctx, l.bin, args...)
	cmd.Env = l.env
	mw := io.MultiWriter(&buf, out)
	cmd.Stdout, cmd.Stderr = mw, mw
	err := cmd.Run()
	out.Close()
	return buf.String(), err
}

// buildBinary builds cmd/callcontrol into dir once.
func buildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "callcontrol")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/callcontrol/callcontrol/cmd/callcontrol")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("soak: go build: %v\n%s", err, out)
	}
	return bin, nil
}

func httpOK(url string) (bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
