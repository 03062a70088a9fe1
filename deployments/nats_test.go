package deployments

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The server configuration of deployments/nats is the reference (the
// compose stack and cmd/callcontrol/permissions_test.go run it); the
// ConfigMap must carry the same settings, with only what Kubernetes needs
// changed.
const (
	natsDir      = "nats"
	natsConfKey  = "nats.conf"
	accountsConf = "accounts.conf"
)

// natsNode is the NATS StatefulSet and its server container.
type natsNode struct {
	w   workload
	sts *appsv1.StatefulSet
	c   *corev1.Container
}

// natsStatefulSet finds the one StatefulSet that runs the callcontrol-nats
// image.
func natsStatefulSet(t *testing.T, m *manifests) natsNode {
	t.Helper()
	var found []natsNode
	for _, w := range m.workloads() {
		for _, c := range allContainers(w.spec) {
			if imageName(c.Image) == "callcontrol-nats" {
				sts, ok := w.owner.obj.(*appsv1.StatefulSet)
				if !ok {
					t.Fatalf("%s runs NATS but is no StatefulSet: its JetStream store needs a stable volume per node", w)
				}
				found = append(found, natsNode{w: w, sts: sts, c: c})
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d NATS containers in %s, want one StatefulSet with one", len(found), k8sDir)
	}
	return found[0]
}

// configArg is the file given with --config (or -c).
func configArg(c *corev1.Container) string {
	args := append(slices.Clone(c.Command), c.Args...)
	for i, a := range args {
		if (a == "--config" || a == "-c") && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return ""
}

// natsFiles is the server configuration as the container sees it: its
// --config file and accounts.conf beside it (nats.conf includes it by a
// relative path), both from the ConfigMap mounted there.
func natsFiles(t *testing.T, m *manifests, n natsNode) map[string]string {
	t.Helper()
	conf := configArg(n.c)
	if conf == "" {
		t.Fatalf("%s container %s: no --config argument", n.w, n.c.Name)
	}
	out := map[string]string{}
	for _, file := range []string{conf, path.Join(path.Dir(conf), accountsConf)} {
		kind, name, key, err := mountedFile(m, n.w, n.c, file)
		if err != nil {
			t.Fatalf("%s container %s: %s: %v", n.w, n.c.Name, file, err)
		}
		if kind != "ConfigMap" {
			t.Fatalf("%s container %s: %s comes from a %s, want a ConfigMap", n.w, n.c.Name, file, kind)
		}
		out[path.Base(file)] = m.configMaps[name].Data[key]
	}
	if _, ok := out[natsConfKey]; !ok {
		t.Fatalf("%s container %s: --config %s, want a file named %s", n.w, n.c.Name, conf, natsConfKey)
	}
	return out
}

// podEnv is the NATS container's environment in pod ordinal 0, with the
// example Secret's values.
func podEnv(m *manifests, n natsNode) map[string]string {
	env := map[string]string{}
	for k, v := range containerEnv(m, n.c) {
		env[k] = v.value
	}
	for _, e := range n.c.Env {
		if f := e.ValueFrom; f != nil && f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.name" {
			env[e.Name] = n.sts.Name + "-0"
		}
	}
	return env
}

var confVar = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)

// parseNATS parses the server configuration in dir (file nats.conf) with
// exactly the environment env: a variable the files use that env lacks is
// unset, so the parser fails on it as the server in the pod would.
func parseNATS(t *testing.T, dir string, env map[string]string) (*server.Options, error) {
	t.Helper()
	for _, f := range []string{natsConfKey, accountsConf} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range confVar.FindAllStringSubmatch(string(data), -1) {
			if _, ok := env[mm[1]]; !ok {
				t.Setenv(mm[1], "") // restored after the test
				os.Unsetenv(mm[1])
			}
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return server.ProcessConfigFile(filepath.Join(dir, natsConfKey))
}

// k8sNATS writes the ConfigMap's files to a directory and parses them with
// the pod's environment.
func k8sNATS(t *testing.T, m *manifests, n natsNode) *server.Options {
	t.Helper()
	dir := t.TempDir()
	for name, data := range natsFiles(t, m, n) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := parseNATS(t, dir, podEnv(m, n))
	if err != nil {
		t.Fatalf("%s: the server configuration of the ConfigMap, with the pod's environment: %v", n.w, err)
	}
	return opts
}

// accounts.conf is the one in deployments/nats byte for byte (that one is
// what the permission tests check), and nats.conf has every setting of
// deployments/nats/nats.conf but the routes, which name the pods here.
func TestNATSConfigMatchesDeploymentsNATS(t *testing.T) {
	m := load(t)
	n := natsStatefulSet(t, m)
	files := natsFiles(t, m, n)
	ref, err := os.ReadFile(filepath.Join(natsDir, accountsConf))
	if err != nil {
		t.Fatal(err)
	}
	if files[accountsConf] != string(ref) {
		t.Errorf("the ConfigMap's %s differs from %s/%s: copy it over (indented under the key)", accountsConf, natsDir, accountsConf)
	}
	got := k8sNATS(t, m, n)
	want, err := parseNATS(t, natsDir, podEnv(m, n))
	if err != nil {
		t.Fatalf("%s/%s: %v", natsDir, natsConfKey, err)
	}
	if g, w := natsSettings(got), natsSettings(want); g != w {
		t.Errorf("the ConfigMap's %s:\n %s\nwant as %s/%s:\n %s", natsConfKey, g, natsDir, natsConfKey, w)
	}
}

// natsSettings is what of a server configuration must not differ between
// deployments/nats and Kubernetes.
func natsSettings(o *server.Options) string {
	var users []string
	for _, u := range o.Users {
		acc := ""
		if u.Account != nil {
			acc = u.Account.Name
		}
		users = append(users, fmt.Sprintf("%s@%s perms=%v", u.Username, acc, u.Permissions != nil))
	}
	sort.Strings(users)
	return fmt.Sprintf("listen=%s:%d http=%s:%d max_payload=%d jetstream=%v store_dir=%s sync_always=%v max_mem=%d max_file=%d cluster=%s@%s:%d routes=%d users=%v",
		o.Host, o.Port, o.HTTPHost, o.HTTPPort, o.MaxPayload, o.JetStream, o.StoreDir, o.SyncAlways,
		o.JetStreamMaxMemory, o.JetStreamMaxStore, o.Cluster.Name, o.Cluster.Host, o.Cluster.Port, len(o.Routes), users)
}

// podNames is the DNS names of a StatefulSet's pods through its headless
// Service, as a pod of the same namespace resolves them.
func podNames(sts *appsv1.StatefulSet) []string {
	var out []string
	for i := range int(replicas(sts.Spec.Replicas)) {
		out = append(out, fmt.Sprintf("%s-%d.%s", sts.Name, i, sts.Spec.ServiceName))
	}
	return out
}

// The routes, the NATS URL of the roles and their stream replicas all
// follow the StatefulSet: the routes and the URL name each of its pods
// through the headless Service on the ports the server listens on, and the
// roles create their streams with one replica per node.
func TestNATSClusterWiring(t *testing.T) {
	m := load(t)
	n := natsStatefulSet(t, m)
	opts := k8sNATS(t, m, n)
	if r := replicas(n.sts.Spec.Replicas); r != 3 {
		t.Errorf("%s: %d replicas, want 3 (R3 streams survive the loss of one node)", n.w, r)
	}
	if n.sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("%s: podManagementPolicy %q, want Parallel: one node alone never gets ready, so OrderedReady never starts the second", n.w, n.sts.Spec.PodManagementPolicy)
	}
	names := podNames(n.sts)
	var routes []string
	for _, u := range opts.Routes {
		routes = append(routes, u.Host)
	}
	if want := hostPorts(names, opts.Cluster.Port); !sameSet(routes, want) {
		t.Errorf("%s: cluster routes %v, want the pods %v", natsConfKey, routes, want)
	}
	checkHeadless(t, m, n)
	for _, rc := range roleContainers(t, m) {
		env := containerEnv(m, rc.c)
		urls, err := natsURLHosts(env["CALLCONTROL_NATS_URL"].value)
		if err != nil {
			t.Errorf("%s: CALLCONTROL_NATS_URL: %v", rc, err)
		} else if want := hostPorts(names, opts.Port); !sameSet(urls, want) {
			t.Errorf("%s: CALLCONTROL_NATS_URL names %v, want the NATS pods %v", rc, urls, want)
		}
		if got, want := env["CALLCONTROL_REPLICAS"].value, strconv.Itoa(int(replicas(n.sts.Spec.Replicas))); got != want {
			t.Errorf("%s: CALLCONTROL_REPLICAS=%s, want %s, one per NATS node", rc, got, want)
		}
	}
	ports := map[string]int{"client": opts.Port, "cluster": opts.Cluster.Port, "monitor": opts.HTTPPort}
	for name, want := range ports {
		cp, ok := probePort(n.c, intOrName(name))
		if !ok || int(cp.ContainerPort) != want {
			t.Errorf("%s: container port %s = %d, want %d as in %s", n.w, name, cp.ContainerPort, want, natsConfKey)
		}
	}
}

// checkHeadless checks the Service the StatefulSet names: headless, so its
// pods get DNS names, published before they are ready, so the routes of
// a forming cluster resolve, and selecting them.
func checkHeadless(t *testing.T, m *manifests, n natsNode) {
	t.Helper()
	svc, ok := m.services[n.sts.Spec.ServiceName]
	if !ok {
		t.Errorf("%s: serviceName %q: no such Service", n.w, n.sts.Spec.ServiceName)
		return
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless)", svc.Name, svc.Spec.ClusterIP)
	}
	if !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses is false: the routes would not resolve until a node is ready, which needs the routes", svc.Name)
	}
	if !selects(svc.Spec.Selector, n.w.labels) {
		t.Errorf("Service %s: selector %v does not select the pods of %s", svc.Name, svc.Spec.Selector, n.w)
	}
}

func hostPorts(hosts []string, port int) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	return out
}

// natsURLHosts is the host:port of each URL of a comma-separated
// --nats-url.
func natsURLHosts(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s carries credentials; they come from the Secret", u.Redacted())
		}
		out = append(out, u.Host)
	}
	return out, nil
}

// What the server writes must be on a writable volume (the root
// filesystem is read-only): the JetStream store on the pod's own
// PersistentVolumeClaim, which outlives the pod, and the pid file the
// preStop hook reads. The claim holds max_file_store, and the pod waits
// out lame duck mode before it is killed.
func TestNATSStorage(t *testing.T) {
	m := load(t)
	n := natsStatefulSet(t, m)
	opts := k8sNATS(t, m, n)
	store, ok := mountOf(n.c, opts.StoreDir)
	switch {
	case !ok:
		t.Errorf("%s: store_dir %s is on no volume", n.w, opts.StoreDir)
	case !n.w.claims[store.Name]:
		t.Errorf("%s: store_dir %s is on volume %s, want a volumeClaimTemplate", n.w, opts.StoreDir, store.Name)
	case store.ReadOnly:
		t.Errorf("%s: store_dir %s is mounted read-only", n.w, opts.StoreDir)
	}
	for _, c := range n.sts.Spec.VolumeClaimTemplates {
		if c.Name != store.Name {
			continue
		}
		size := c.Spec.Resources.Requests[corev1.ResourceStorage]
		if size.Value() <= opts.JetStreamMaxStore {
			t.Errorf("%s: claim %s of %s, not above max_file_store (%d bytes)", n.w, c.Name, size.String(), opts.JetStreamMaxStore)
		}
	}
	pid, ok := mountOf(n.c, opts.PidFile)
	if opts.PidFile == "" || !ok || pid.ReadOnly {
		t.Errorf("%s: pid_file %q is not on a writable volume", n.w, opts.PidFile)
	}
	if ls := n.c.Lifecycle; ls == nil || ls.PreStop == nil || ls.PreStop.Exec == nil ||
		!slices.Contains(ls.PreStop.Exec.Command, "ldm="+opts.PidFile) {
		t.Errorf("%s: no preStop hook signalling lame duck mode to the pid in %s", n.w, opts.PidFile)
	}
	grace := time.Duration(30) * time.Second
	if g := n.sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if ldm := opts.LameDuckGracePeriod + opts.LameDuckDuration; grace <= ldm {
		t.Errorf("%s: terminationGracePeriodSeconds %s, not above lame duck mode's %s", n.w, grace, ldm)
	}
	limit := n.c.Resources.Limits[corev1.ResourceMemory]
	if opts.JetStreamMaxMemory >= limit.Value() {
		t.Errorf("%s: max_memory_store %d bytes is not below the memory limit %s", n.w, opts.JetStreamMaxMemory, limit.String())
	}
}

// mountOf is the volume mount that holds file (or directory) p.
func mountOf(c *corev1.Container, p string) (corev1.VolumeMount, bool) {
	best := corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mp := strings.TrimSuffix(vm.MountPath, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best.MountPath) {
			best = vm
		}
	}
	return best, best.Name != ""
}

// Each role's NATS password and the server's password of that user are the
// same key of the same Secret, and the user is one of accounts.conf with
// permissions of its own (not the admin, which may do anything).
func TestNATSPasswordsMatchRoles(t *testing.T) {
	m := load(t)
	n := natsStatefulSet(t, m)
	opts := k8sNATS(t, m, n)
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	serverRefs := map[string]*corev1.SecretKeySelector{}
	for _, e := range n.c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			serverRefs[e.Name] = e.ValueFrom.SecretKeyRef
		}
	}
	for _, rc := range roleContainers(t, m) {
		env := containerEnv(m, rc.c)
		user := env["CALLCONTROL_NATS_USER"].value
		if u, ok := users[user]; !ok || u.Permissions == nil {
			t.Errorf("%s: NATS user %q is no user of %s with permissions of its own", rc, user, accountsConf)
		}
		kind, secret, key, err := mountedFile(m, rc.w, rc.c, env["CALLCONTROL_NATS_PASSWORD_FILE"].value)
		if err != nil || kind != "Secret" {
			t.Errorf("%s: CALLCONTROL_NATS_PASSWORD_FILE: %v (from a %s)", rc, err, kind)
			continue
		}
		// accounts.conf names each user's password $CALLCONTROL_<USER>_PASSWORD.
		v := "CALLCONTROL_" + strings.ToUpper(user) + "_PASSWORD"
		ref, ok := serverRefs[v]
		if !ok || ref.Name != secret || ref.Key != key {
			t.Errorf("%s: reads its password from Secret %s key %s, but the server's %s is %+v", rc, secret, key, v, ref)
		}
	}
}

// The NATS probes, asked of a real server started from the ConfigMap's
// configuration and the pod's environment, alone (the routes name pods
// that do not exist here) on loopback ports: each answers 200 on the
// container's monitor port. A bad path or query parameter answers 4xx, a
// configuration the server refuses fails the start.
func TestNATSProbesAnswer(t *testing.T) {
	m := load(t)
	n := natsStatefulSet(t, m)
	opts := k8sNATS(t, m, n)
	probes := map[string]*corev1.Probe{"startup": n.c.StartupProbe, "liveness": n.c.LivenessProbe, "readiness": n.c.ReadinessProbe}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("%s: no %s httpGet probe", n.w, kind)
		}
		cp, ok := probePort(n.c, p.HTTPGet.Port)
		if !ok || cp.Name != "monitor" || int(cp.ContainerPort) != opts.HTTPPort {
			t.Errorf("%s: %s probe on port %s, want the port named monitor (%d, the server's http)", n.w, kind, p.HTTPGet.Port.String(), opts.HTTPPort)
		}
	}
	if got := n.c.LivenessProbe.HTTPGet.Path; got != "/healthz?js-enabled-only=true" {
		t.Errorf("%s: liveness probe %s, want /healthz?js-enabled-only=true: a server waiting for its peers must not be restarted", n.w, got)
	}
	base := startNATS(t, opts)
	for kind, p := range probes {
		url := base + p.HTTPGet.Path
		deadline := time.Now().Add(15 * time.Second)
		got := getStatus(t, url)
		for got == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // JetStream may still be starting
			got = getStatus(t, url)
		}
		if got != http.StatusOK {
			t.Errorf("%s probe GET %s: %d, want 200", kind, p.HTTPGet.Path, got)
		}
	}
}

// startNATS runs opts as a single server on loopback ports with its files
// in temporary directories, and returns the base URL of its monitoring
// port.
func startNATS(t *testing.T, opts *server.Options) string {
	t.Helper()
	o := opts.Clone()
	o.Host, o.Port = "127.0.0.1", -1
	o.HTTPHost, o.HTTPPort = "127.0.0.1", -1
	o.Cluster, o.Routes, o.RoutesStr = server.ClusterOpts{}, nil, ""
	o.StoreDir = t.TempDir()
	o.PidFile = filepath.Join(t.TempDir(), "nats.pid")
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready in 10 s")
	}
	return "http://" + s.MonitorAddr().String()
}
