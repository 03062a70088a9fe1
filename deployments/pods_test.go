package deployments

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Every container of every workload runs as the restricted Pod Security
// Standard asks: not as root, no privilege escalation, no capabilities,
// the runtime's default seccomp profile, and a read-only root filesystem
// (what a process must write goes to a volume). A pod-level setting counts
// where the container does not override it.
func TestPodsHardened(t *testing.T) {
	m := load(t)
	ws := m.workloads()
	if len(ws) == 0 {
		t.Fatal("no workloads")
	}
	for _, w := range ws {
		psc := w.spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false; nothing here talks to the API server", w)
		}
		for _, c := range allContainers(w.spec) {
			for _, p := range hardeningProblems(psc, c.SecurityContext) {
				t.Errorf("%s container %s: %s", w, c.Name, p)
			}
		}
	}
}

func hardeningProblems(psc *corev1.PodSecurityContext, sc *corev1.SecurityContext) []string {
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	var out []string
	nonRoot, user := psc.RunAsNonRoot, psc.RunAsUser
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if sc.RunAsUser != nil {
		user = sc.RunAsUser
	}
	if nonRoot == nil || !*nonRoot {
		out = append(out, "runAsNonRoot is not true")
	}
	// With no runAsUser the image's user decides, and the scratch images
	// here have none: the kubelet would then refuse to start the container.
	if user == nil || *user == 0 {
		out = append(out, "runAsUser is not set to a non-zero UID")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		out = append(out, "readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		out = append(out, "allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		out = append(out, "privileged")
	}
	if sc.Capabilities == nil || !containsCap(sc.Capabilities.Drop, "ALL") {
		out = append(out, "capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		out = append(out, fmt.Sprintf("capabilities add %v", sc.Capabilities.Add))
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		out = append(out, "seccompProfile is not RuntimeDefault")
	}
	return out
}

func containsCap(caps []corev1.Capability, c corev1.Capability) bool {
	for _, x := range caps {
		if x == c {
			return true
		}
	}
	return false
}

// Every container requests and is limited in CPU and memory (requests at
// most the limits), and a Go program's GOMEMLIMIT stays under its memory
// limit: above it the kernel kills the process before the Go runtime
// would collect harder.
func TestResourcesSet(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads() {
		for _, c := range allContainers(w.spec) {
			r := c.Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := r.Requests[name]
				lim, hasLim := r.Limits[name]
				switch {
				case !hasReq || req.IsZero():
					t.Errorf("%s container %s: no %s request", w, c.Name, name)
				case !hasLim || lim.IsZero():
					t.Errorf("%s container %s: no %s limit", w, c.Name, name)
				case req.Cmp(lim) > 0:
					t.Errorf("%s container %s: %s request %s above its limit %s", w, c.Name, name, req.String(), lim.String())
				}
			}
			limit, ok := r.Limits[corev1.ResourceMemory]
			gml, err := goMemLimit(containerEnv(m, c)["GOMEMLIMIT"].value)
			switch {
			case err != nil:
				t.Errorf("%s container %s: GOMEMLIMIT: %v", w, c.Name, err)
			case gml > 0 && ok && gml >= limit.Value():
				t.Errorf("%s container %s: GOMEMLIMIT %d bytes is not below the memory limit %s", w, c.Name, gml, limit.String())
			}
		}
	}
}

var goMemLimitSyntax = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

// goMemLimit parses GOMEMLIMIT as the Go runtime does (0 for unset).
func goMemLimit(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	mm := goMemLimitSyntax.FindStringSubmatch(v)
	if mm == nil {
		return 0, fmt.Errorf("%q is not a byte count like 900MiB", v)
	}
	n, err := strconv.ParseInt(mm[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[mm[2]]
	return n << shift, nil
}

func TestGoMemLimit(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "200MiB": 200 << 20, "1GiB": 1 << 30, "4096": 4096} {
		if got, err := goMemLimit(in); err != nil || got != want {
			t.Errorf("goMemLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := goMemLimit("200M"); err == nil {
		t.Error(`goMemLimit("200M"): no error (the runtime refuses it)`)
	}
}

// A stopping worker finishes its in-flight commands for up to
// --shutdown-timeout (a request already sent runs to its answer): the pod's
// grace period must be longer, or the kubelet kills it mid-request.
func TestGracePeriodCoversShutdown(t *testing.T) {
	m := load(t)
	n := 0
	for _, rc := range roleContainers(t, m) {
		def, ok := roleFlags(t, rc.role)["shutdown-timeout"]
		if !ok {
			continue
		}
		n++
		v := def
		if e, set := containerEnv(m, rc.c)["CALLCONTROL_SHUTDOWN_TIMEOUT"]; set {
			v = e.value
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: --shutdown-timeout %q: %v", rc, v, err)
		}
		grace := 30 * time.Second // the API's default
		if g := rc.w.spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= d {
			t.Errorf("%s: terminationGracePeriodSeconds %s, not above --shutdown-timeout %s", rc, grace, d)
		}
	}
	if n == 0 {
		t.Fatal("no role has --shutdown-timeout: the worker should")
	}
}

// healthPort is the port of CALLCONTROL_HEALTH_LISTEN in a container's
// environment (":8080" → 8080).
func healthPort(env map[string]envValue) (int32, error) {
	listen := env["CALLCONTROL_HEALTH_LISTEN"].value
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0, fmt.Errorf("CALLCONTROL_HEALTH_LISTEN=%q: %v", listen, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("CALLCONTROL_HEALTH_LISTEN=%q: %v", listen, err)
	}
	return int32(n), nil
}

// probePort resolves a probe's port (a number or a container port name)
// to the container port it names.
func probePort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// The callcontrol containers' probes are HTTP GETs on the container port
// named health, which is the port the role listens on
// (CALLCONTROL_HEALTH_LISTEN), with different paths for liveness and
// readiness: a liveness probe on the readiness path would restart every
// pod while NATS is down. TestProbesAnswer runs the binary on those paths.
func TestRoleProbesOnHealthPort(t *testing.T) {
	m := load(t)
	for _, rc := range roleContainers(t, m) {
		port, err := healthPort(containerEnv(m, rc.c))
		if err != nil {
			t.Errorf("%s: %v", rc, err)
			continue
		}
		live, ready := rc.c.LivenessProbe, rc.c.ReadinessProbe
		if live == nil || ready == nil || live.HTTPGet == nil || ready.HTTPGet == nil {
			t.Errorf("%s: liveness and readiness must both be httpGet probes", rc)
			continue
		}
		if live.HTTPGet.Path == ready.HTTPGet.Path {
			t.Errorf("%s: liveness and readiness both GET %s", rc, live.HTTPGet.Path)
		}
		for kind, p := range map[string]*corev1.Probe{"liveness": live, "readiness": ready} {
			cp, ok := probePort(rc.c, p.HTTPGet.Port)
			switch {
			case !ok:
				t.Errorf("%s: %s probe port %s is no port of the container", rc, kind, p.HTTPGet.Port.String())
			case cp.Name != "health":
				t.Errorf("%s: %s probe on port %q, want the port named health", rc, kind, cp.Name)
			case cp.ContainerPort != port:
				t.Errorf("%s: %s probe on port %d, but CALLCONTROL_HEALTH_LISTEN listens on %d", rc, kind, cp.ContainerPort, port)
			}
		}
	}
}

// The probe paths of the manifests, asked of the real worker, poller and api
// with NATS unreachable: liveness answers 200 (the process runs) and
// readiness 503 (not connected). A path the binary does not serve answers
// 404, and a liveness check that depended on NATS would fail here too.
func TestProbesAnswer(t *testing.T) {
	m := load(t)
	done := map[string]bool{}
	for _, rc := range roleContainers(t, m) {
		if done[rc.role] || rc.c.LivenessProbe == nil || rc.c.ReadinessProbe == nil ||
			rc.c.LivenessProbe.HTTPGet == nil || rc.c.ReadinessProbe.HTTPGet == nil {
			continue // TestRoleProbesOnHealthPort fails these
		}
		done[rc.role] = true
		t.Run(rc.role, func(t *testing.T) {
			base := startRole(t, rc.role)
			waitStatus(t, base+rc.c.LivenessProbe.HTTPGet.Path, http.StatusOK)
			if got := getStatus(t, base+rc.c.ReadinessProbe.HTTPGet.Path); got != http.StatusServiceUnavailable {
				t.Errorf("GET %s with NATS unreachable: %d, want 503", rc.c.ReadinessProbe.HTTPGet.Path, got)
			}
		})
	}
	if !done["worker"] || !done["poller"] || !done["api"] {
		t.Errorf("probes asked of %v, want worker, poller and api", done)
	}
}

// startRole runs `callcontrol <role>` with its health endpoint on a free
// loopback port and NATS on a loopback port nothing listens on, and
// returns the endpoint's base URL. The process is killed at the end of the
// test.
func startRole(t *testing.T, role string) string {
	t.Helper()
	health, nats := freePort(t), freePort(t)
	args := []string{role, "--health-listen", health, "--nats-url", "nats://" + nats}
	if role == "api" {
		// No gateway; a token file and a loopback listener instead.
		tokens := filepath.Join(t.TempDir(), "tokens.json")
		if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"probe","sha256":"`+api.HashToken("probe")+`","scopes":["commands:read"]}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--api-tokens", tokens, "--api-listen", freePort(t))
	} else {
		args = append(args, "--gateway-url", "https://127.0.0.1:9")
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Env = cleanEnv()
	var logs testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("callcontrol %s output:\n%s", role, logs.String())
		}
	})
	return "http://" + health
}

// freePort is a loopback address no one listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0 // not listening (yet)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until the process answers, for at most 30 s (it
// may still be starting), and fails unless the answer is want.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for got == 0 && time.Now().Before(deadline) {
		if got = getStatus(t, url); got == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if got != want {
		t.Fatalf("GET %s: %d, want %d", url, got, want)
	}
}
