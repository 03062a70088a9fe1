package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/metrics"
)

// child is a worker, poller or floor process of Config.Executable.
type child struct {
	role   string
	cmd    *exec.Cmd
	health string // host:port of its health endpoint
	done   chan struct{}
	out    io.Writer // where profile reports its failure
}

// start runs `<Config.Executable> role args...` with its NATS and gateway flags
// and waits until its health endpoint answers /readyz.
func (e *benchEnv) start(ctx context.Context, role string, args ...string) (*child, error) {
	return e.startNamed(ctx, role, role, args...)
}

// startNamed is start with the child's log in name.log (for a second
// child of a role).
func (e *benchEnv) startNamed(ctx context.Context, name, role string, args ...string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	base := []string{role, "--nats-url", e.url, "--gateway-url", e.sim.URL, "--gateway-ca", e.caFile,
		"--health-listen", port, "--log-level", "info", "--pprof"}
	c := &child{role: name, health: port, done: make(chan struct{}), out: e.cfg.Progress,
		cmd: exec.Command(e.cfg.Executable, append(base, args...)...)}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Env = append(os.Environ(), "CALLCONTROL_BENCH_CHILD=1")
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = c.cmd.Wait(); logf.Close(); close(c.done) }()
	e.kids = append(e.kids, c)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, _ := httpOK("http://" + port + "/readyz"); ok {
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("bench: %s exited at start; see %s", name, logf.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench: %s not ready after 30s", name)
		}
	}
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM (SIGKILL after 30 s) and waits.
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// profile writes a CPU profile of the child over d to path (errors are
// printed: a profile is a by-product of a run).
func (c *child) profile(path string, d time.Duration) {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.health, int(d.Seconds())))
	if err == nil {
		defer resp.Body.Close()
		var f *os.File
		if f, err = os.Create(path); err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
	}
	if err != nil {
		fmt.Fprintf(c.out, "bench: profile of %s: %v\n", c.role, err)
	}
}

// ProcStats is what the kernel and the Go runtime say about a child.
type ProcStats struct {
	CPU        time.Duration `json:"cpu_ns"`
	RSS        int64         `json:"rss_bytes"`
	PeakRSS    int64         `json:"peak_rss_bytes"`
	Threads    int           `json:"threads"`
	Sockets    int           `json:"sockets"`
	Goroutines int           `json:"goroutines"` // -1 when the child does not export go_goroutines
}

// stats reads /proc/<pid> and the child's /metrics.
func (c *child) stats() (ProcStats, error) {
	pid := c.cmd.Process.Pid
	st := ProcStats{Goroutines: -1}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are fields 14 and 15 of proc(5), in clock ticks (100 Hz).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.CPU = time.Duration(ut+stt) * 10 * time.Millisecond
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n << 10
		case "VmHWM":
			st.PeakRSS = n << 10
		case "Threads":
			st.Threads = int(n)
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			st.Sockets++
		}
	}
	st.Goroutines = c.gauge("go_goroutines")
	return st, nil
}

// gauge reads one unlabelled metric from the child's /metrics, -1 if absent.
func (c *child) gauge(name string) int {
	resp, err := http.Get("http://" + c.health + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// histogram reads histogram name (its series with labels) from the
// child's /metrics page.
func (c *child) histogram(name string, labels map[string]string) (metrics.Histogram, error) {
	resp, err := http.Get("http://" + c.health + "/metrics")
	if err != nil {
		return metrics.Histogram{}, err
	}
	defer resp.Body.Close()
	return metrics.ReadHistogram(resp.Body, name, labels)
}

func httpOK(url string) (bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
