//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// composeFile is the stack under test; its services carry the label
// com.callcontrol.e2e=true.
const composeFile = "../deployments/compose.yaml"

// compose runs docker-compose against one project of deployments/compose.yaml.
type composeProject struct {
	t       *testing.T
	project string
	file    string
}

func (c *composeProject) cmd(ctx context.Context, args ...string) *exec.Cmd {
	all := []string{"-p", c.project, "-f", c.file}
	if args[0] != "up" {
		// the cli service (profile tools) is for `run` only, not started by `up`
		all = append(all, "--profile", "tools")
	}
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, "docker-compose", all...)
	cmd.Env = append(os.Environ(), "COMPOSE_INTERACTIVE_NO_CLI=1")
	return cmd
}

// run runs docker-compose args and returns its combined output.
func (c *composeProject) run(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := c.cmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// port returns the loopback host:port published for service's port.
// It refuses any address but loopback: the test talks to nothing else.
func (c *composeProject) port(ctx context.Context, service string, port int) (string, error) {
	out, err := c.run(ctx, "port", service, fmt.Sprint(port))
	if err != nil {
		return "", fmt.Errorf("port %s %d: %v: %s", service, port, err, out)
	}
	addr := strings.TrimSpace(out)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("port %s %d: %q: %v", service, port, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		c.t.Fatalf("service %s is published on %s, not on loopback", service, addr)
	}
	return addr, nil
}

// state is the docker state of service's container: "running", "exited 0", ….
func (c *composeProject) state(ctx context.Context, service string) string {
	id, err := c.run(ctx, "ps", "-q", service)
	if id = strings.TrimSpace(id); err != nil || id == "" {
		return "absent"
	}
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

var composeClient = &http.Client{Timeout: 3 * time.Second}

func composeHTTP(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := composeClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// composeWaitFor polls cond every second until it is true or ctx ends.
func composeWaitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last: %s)", what, last)
		case <-time.After(time.Second): // polling interval
		}
	}
}

// composeBuildImages runs `make images` (callcontrol:dev, callcontrol-nats:dev)
// unless CALLCONTROL_E2E_SKIP_BUILD=1 says they are built already.
func composeBuildImages(ctx context.Context, t *testing.T) {
	t.Helper()
	if os.Getenv("CALLCONTROL_E2E_SKIP_BUILD") == "1" {
		return
	}
	cmd := exec.CommandContext(ctx, "make", "images")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
}

// The compose stack (3 NATS nodes with the production accounts, the
// simulator, 2 workers, 2 pollers, seeds) comes up, and disconnects
// published by the publisher role from inside the compose network are
// accepted and confirmed.
func TestComposeStack(t *testing.T) {
	for _, bin := range []string{"docker", "docker-compose", "make"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found: %v", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	composeBuildImages(ctx, t)

	file, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &composeProject{t: t, project: fmt.Sprintf("cce2e%d", time.Now().UnixNano()%1_000_000_000), file: file}
	t.Cleanup(func() {
		// Clean up even when the test failed or timed out: a fresh context.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if t.Failed() {
			logs, _ := c.run(dctx, "logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", logs)
		}
		if out, err := c.run(dctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	if out, err := c.run(ctx, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}

	// Workers and pollers: /readyz 200 on their published health port (the
	// port can change when a container restarts, so it is looked up anew).
	for _, svc := range []string{"worker1", "worker2", "poller1", "poller2"} {
		composeWaitFor(ctx, t, svc+" ready", func() (bool, string) {
			addr, err := c.port(ctx, svc, 8080)
			if err != nil {
				return false, err.Error()
			}
			code, body, err := composeHTTP("GET", "http://"+addr+"/readyz", "")
			if err != nil {
				return false, err.Error()
			}
			return code == 200, fmt.Sprintf("%d %s", code, body)
		})
	}
	// The seeds exit 0 once the session registry exists and the agent is
	// signed in, so they also tell that the streams are provisioned.
	agents := []int{101, 102, 103}
	for _, a := range agents {
		svc := fmt.Sprintf("seed-%d", a)
		composeWaitFor(ctx, t, svc+" to sign the agent in", func() (bool, string) {
			s := c.state(ctx, svc)
			return s == "exited 0", s
		})
	}
	sim, err := c.port(ctx, "gatewaysim", 8043)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := composeHTTP("GET", "http://"+sim+"/simulator/stats", ""); err != nil || code != 200 {
		t.Fatalf("gatewaysim stats: %d %v", code, err)
	}

	// Every stream and bucket exists with 3 replicas (n1's monitoring
	// endpoint; the roles may still be provisioning the last ones).
	mon, err := c.port(ctx, "n1", 8222)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CALLCONTROL_COMMANDS", "CALLCONTROL_RESULTS", "CALLCONTROL_DLQ", "CALLCONTROL_EVENTS",
		"KV_callcontrol_ledger", "KV_callcontrol_sessions", "KV_callcontrol_pending", "KV_callcontrol_leases", "KV_callcontrol_pollers"}
	composeWaitFor(ctx, t, "every stream with 3 replicas", func() (bool, string) {
		code, body, err := composeHTTP("GET", "http://"+mon+"/jsz?acc=CALLCONTROL&streams=true&config=true", "")
		if err != nil || code != 200 {
			return false, fmt.Sprintf("n1 /jsz: %d %v", code, err)
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name   string `json:"name"`
					Config struct {
						Replicas int `json:"num_replicas"`
					} `json:"config"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		if err := json.Unmarshal([]byte(body), &jsz); err != nil {
			return false, err.Error()
		}
		replicas := map[string]int{}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				replicas[st.Name] = st.Config.Replicas
			}
		}
		for _, name := range want {
			if replicas[name] != 3 {
				return false, fmt.Sprintf("%s has %d replicas (all: %v)", name, replicas[name], replicas)
			}
		}
		return true, ""
	})

	accepted := regexp.MustCompile(`(?m)^accepted\s+command=`)
	confirmed := regexp.MustCompile(`(?m)^confirmed\s+command=.* event=AgentEvent_Customer_Release`)
	for _, a := range agents {
		number := fmt.Sprintf("5550%d", a)
		code, body, err := composeHTTP("POST", fmt.Sprintf("http://%s/simulator/agents/%d/calls", sim, a), `{"customer":"`+number+`"}`)
		if err != nil || code != 200 {
			t.Fatalf("start a call for agent %d: %d %s %v", a, code, body, err)
		}
		out, err := c.run(ctx, "run", "--rm", "-T", "cli", "disconnect",
			"--agent", fmt.Sprint(a), "--number", number, "--wait", "--timeout", "90s", "--correlation-id", "e2e-"+c.project)
		if err != nil {
			t.Fatalf("disconnect agent %d: %v\n%s", a, err, out)
		}
		if !accepted.MatchString(out) || !confirmed.MatchString(out) {
			t.Fatalf("disconnect agent %d: want accepted and confirmed, got:\n%s", a, out)
		}
		t.Logf("agent %d: %s", a, strings.TrimSpace(out))
	}
	code, body, err := composeHTTP("GET", "http://"+sim+"/simulator/disconnects", "")
	if err != nil || code != 200 {
		t.Fatalf("gatewaysim disconnects: %d %v", code, err)
	}
	for _, a := range agents {
		if !strings.Contains(body, fmt.Sprint(a)) {
			t.Errorf("the simulator executed no disconnect for agent %d: %s", a, body)
		}
	}
}
