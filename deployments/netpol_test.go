package deployments

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The policies are checked by evaluating them, as a network plugin would,
// for connections that must and must not pass; no packet is sent. The
// peers outside the manifests are the ones networkpolicy.yaml documents.
const (
	nsLabel     = "kubernetes.io/metadata.name"
	monitoring  = "monitoring"  // where Prometheus runs
	kubeSystem  = "kube-system" // where the cluster DNS runs
	outsideAddr = "203.0.113.7" // TEST-NET-3: an address no rule names
)

// peer is one end of a connection: a pod (its labels, and its namespace's
// labels) or, with pod nil, an address.
type peer struct {
	ns  map[string]string
	pod map[string]string
	ip  net.IP
}

// dest is the port a connection goes to: its number, its name in the
// destination pod (empty for an address) and protocol.
type dest struct {
	port  int32
	name  string
	proto corev1.Protocol
}

// policyNet evaluates the manifests' NetworkPolicies in namespace ns.
type policyNet struct {
	t   *testing.T
	ns  map[string]string
	pol []*networkingv1.NetworkPolicy
}

func newPolicyNet(t *testing.T, m *manifests) *policyNet {
	n := &policyNet{t: t, ns: map[string]string{nsLabel: kustomizationNamespace(t)}}
	for _, name := range sortedKeys(m.netpols) {
		n.pol = append(n.pol, m.netpols[name])
	}
	return n
}

// inNS is a pod of the manifests' own namespace.
func (n *policyNet) inNS(pod map[string]string) peer { return peer{ns: n.ns, pod: pod} }

func inNamespace(name string, pod map[string]string) peer {
	return peer{ns: map[string]string{nsLabel: name}, pod: pod}
}

// isolated reports whether some policy selects pod for the direction: a
// pod no policy selects is open that way.
func (n *policyNet) isolated(pod map[string]string, dir networkingv1.PolicyType) bool {
	for _, p := range n.pol {
		if n.sel(&p.Spec.PodSelector, pod) && hasType(p, dir) {
			return true
		}
	}
	return false
}

func hasType(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	for _, pt := range p.Spec.PolicyTypes {
		if pt == dir {
			return true
		}
	}
	return false
}

// ingress reports whether pod (in the manifests' namespace) admits a
// connection from src to d.
func (n *policyNet) ingress(pod map[string]string, src peer, d dest) bool {
	if !n.isolated(pod, networkingv1.PolicyTypeIngress) {
		return true
	}
	for _, p := range n.pol {
		if !n.sel(&p.Spec.PodSelector, pod) || !hasType(p, networkingv1.PolicyTypeIngress) {
			continue
		}
		for _, r := range p.Spec.Ingress {
			if n.peers(r.From, src) && portsMatch(r.Ports, d) {
				return true
			}
		}
	}
	return false
}

// egress reports whether pod (in the manifests' namespace) may connect to
// dst on d.
func (n *policyNet) egress(pod map[string]string, dst peer, d dest) bool {
	if !n.isolated(pod, networkingv1.PolicyTypeEgress) {
		return true
	}
	for _, p := range n.pol {
		if !n.sel(&p.Spec.PodSelector, pod) || !hasType(p, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range p.Spec.Egress {
			if n.peers(r.To, dst) && portsMatch(r.Ports, d) {
				return true
			}
		}
	}
	return false
}

// sel is a NetworkPolicy selector: empty selects everything.
func (n *policyNet) sel(s *metav1.LabelSelector, l map[string]string) bool {
	if s == nil {
		return true
	}
	ls, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		n.t.Fatalf("selector %v: %v", s, err)
	}
	return ls.Matches(labels.Set(l))
}

// peers reports whether a rule's peer list admits p (no peers: anyone).
func (n *policyNet) peers(list []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(list) == 0 {
		return true
	}
	for _, np := range list {
		if np.IPBlock != nil {
			if p.pod == nil && inBlock(n.t, np.IPBlock, p.ip) {
				return true
			}
			continue
		}
		if p.pod == nil {
			continue
		}
		nsOK := np.NamespaceSelector == nil && labels.Equals(p.ns, n.ns) ||
			np.NamespaceSelector != nil && n.sel(np.NamespaceSelector, p.ns)
		if nsOK && n.sel(np.PodSelector, p.pod) {
			return true
		}
	}
	return false
}

func inBlock(t *testing.T, b *networkingv1.IPBlock, ip net.IP) bool {
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		t.Fatalf("ipBlock %s: %v", b.CIDR, err)
	}
	if !cidr.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if _, ex, err := net.ParseCIDR(e); err == nil && ex.Contains(ip) {
			return false
		}
	}
	return true
}

// portsMatch reports whether a rule's ports admit d (no ports: all).
func portsMatch(ports []networkingv1.NetworkPolicyPort, d dest) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != d.proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			if d.name != "" && p.Port.StrVal == d.name {
				return true
			}
		case p.EndPort != nil:
			if d.port >= p.Port.IntVal && d.port <= *p.EndPort {
				return true
			}
		case p.Port.IntVal == d.port:
			return true
		}
	}
	return false
}

// containerDest is a named container port of w as a destination.
func containerDest(t *testing.T, w workload, name string) dest {
	t.Helper()
	for _, c := range allContainers(w.spec) {
		if cp, ok := probePort(c, intOrName(name)); ok {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			return dest{port: cp.ContainerPort, name: cp.Name, proto: proto}
		}
	}
	t.Fatalf("%s: no container port %s", w, name)
	return dest{}
}

func kustomizationNamespace(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sDir, kustomization))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomizationFile
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &k); err != nil || k.Namespace == "" {
		t.Fatalf("%s: no namespace (%v)", kustomization, err)
	}
	return k.Namespace
}

// gatewayPort is the port of CALLCONTROL_GATEWAY_URL.
func gatewayPort(t *testing.T, raw string) int32 {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("CALLCONTROL_GATEWAY_URL %q: want an https URL (%v)", raw, err)
	}
	p := u.Port()
	if p == "" {
		return 443
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// ipBlocks is the network address of each ipBlock pod may reach: the
// gateway is not in the manifests, so the policy's own address for it
// (a placeholder until set) stands for it.
func ipBlocks(n *policyNet, pod map[string]string) []net.IP {
	var out []net.IP
	for _, p := range n.pol {
		if !n.sel(&p.Spec.PodSelector, pod) {
			continue
		}
		for _, r := range p.Spec.Egress {
			for _, to := range r.To {
				if to.IPBlock != nil {
					if ip, _, err := net.ParseCIDR(to.IPBlock.CIDR); err == nil {
						out = append(out, ip)
					}
				}
			}
		}
	}
	return out
}

// Every pod is isolated both ways: whatever no rule admits is denied.
func TestNetworkPoliciesIsolateEveryPod(t *testing.T) {
	m := load(t)
	n := newPolicyNet(t, m)
	for _, w := range m.workloads() {
		for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
			if !n.isolated(w.labels, dir) {
				t.Errorf("%s: no NetworkPolicy restricts its %s", w, dir)
			}
		}
	}
}

// The worker and poller reach NATS on the client port of their URL, the
// gateway on its URL's port at the policy's address, and DNS; nothing
// else. Only Prometheus reaches them, on the health port. The api reaches
// NATS and DNS only, and is reached on its health port by Prometheus and
// on its API port by the namespaces labelled callcontrol/api-client=true.
func TestRoleNetworkPolicy(t *testing.T) {
	m := load(t)
	n := newPolicyNet(t, m)
	nats := natsStatefulSet(t, m)
	client, cluster, monitor := containerDest(t, nats.w, "client"), containerDest(t, nats.w, "cluster"), containerDest(t, nats.w, "monitor")
	dnsPod := inNamespace(kubeSystem, map[string]string{"k8s-app": "kube-dns"})
	prometheus := inNamespace(monitoring, map[string]string{"app.kubernetes.io/name": "prometheus"})
	for _, rc := range roleContainers(t, m) {
		pod := rc.w.labels
		env := containerEnv(m, rc.c)
		gwPort := int32(443) // the api talks to no gateway: any outside port
		if rc.role != "api" {
			gwPort = gatewayPort(t, env["CALLCONTROL_GATEWAY_URL"].value)
		}
		health := containerDest(t, rc.w, "health")
		check := func(what string, got, want bool) {
			if got != want {
				t.Errorf("%s: %s: allowed %v, want %v", rc.w, what, got, want)
			}
		}
		check("egress to NATS client port", n.egress(pod, n.inNS(nats.w.labels), client), true)
		check("egress to NATS cluster port", n.egress(pod, n.inNS(nats.w.labels), cluster), false)
		check("egress to NATS monitoring port", n.egress(pod, n.inNS(nats.w.labels), monitor), false)
		check("egress to DNS over UDP", n.egress(pod, dnsPod, dest{port: 53, proto: corev1.ProtocolUDP}), true)
		check("egress to DNS over TCP", n.egress(pod, dnsPod, dest{port: 53, proto: corev1.ProtocolTCP}), true)
		check("egress to the DNS pods' port 80", n.egress(pod, dnsPod, dest{port: 80, proto: corev1.ProtocolTCP}), false)
		gws := ipBlocks(n, pod)
		switch {
		case rc.role == "api" && len(gws) > 0:
			t.Errorf("%s: ipBlocks %v: the api talks to no gateway", rc.w, gws)
		case rc.role != "api" && len(gws) == 0:
			t.Errorf("%s: no ipBlock for the gateway", rc.w)
		}
		checkAPIPort(t, n, rc, nats.w, prometheus)
		for _, ip := range gws {
			check("egress to the gateway address "+ip.String()+" on the URL's port", n.egress(pod, peer{ip: ip}, dest{port: gwPort, proto: corev1.ProtocolTCP}), true)
			check("egress to the gateway address on another port", n.egress(pod, peer{ip: ip}, dest{port: gwPort + 1, proto: corev1.ProtocolTCP}), false)
		}
		check("egress to an address outside", n.egress(pod, peer{ip: net.ParseIP(outsideAddr)}, dest{port: gwPort, proto: corev1.ProtocolTCP}), false)
		check("ingress from Prometheus on the health port", n.ingress(pod, prometheus, health), true)
		check("ingress from Prometheus on another port", n.ingress(pod, prometheus, dest{port: health.port + 1, proto: corev1.ProtocolTCP}), false)
		check("ingress from a NATS pod on the health port", n.ingress(pod, n.inNS(nats.w.labels), health), false)
		check("ingress from another namespace on the health port", n.ingress(pod, inNamespace("default", map[string]string{}), health), false)
		for _, other := range roleContainers(t, m) {
			if other.w.owner.name != rc.w.owner.name {
				check("egress to "+other.w.owner.name+"'s health port", n.egress(pod, n.inNS(other.w.labels), containerDest(t, other.w, "health")), false)
			}
		}
	}
}

// apiClientNS is the namespace label that lets HTTP API clients in.
const apiClientNS = "callcontrol/api-client"

// checkAPIPort checks who reaches rc's API port: for the api, the
// labelled namespaces and no one else; the other roles have none.
func checkAPIPort(t *testing.T, n *policyNet, rc roleContainer, nats workload, prometheus peer) {
	t.Helper()
	if rc.role != "api" {
		if _, ok := probePort(rc.c, intOrName("api")); ok {
			t.Errorf("%s: an api port on a %s", rc.w, rc.role)
		}
		return
	}
	apiPort := containerDest(t, rc.w, "api")
	crm := peer{ns: map[string]string{nsLabel: "crm", apiClientNS: "true"}, pod: map[string]string{}}
	for what, c := range map[string]struct {
		from peer
		want bool
	}{
		"a labelled namespace":    {crm, true},
		"an unlabelled namespace": {inNamespace("default", map[string]string{}), false},
		"Prometheus":              {prometheus, false},
		"a NATS pod":              {n.inNS(nats.labels), false},
	} {
		if got := n.ingress(rc.w.labels, c.from, apiPort); got != c.want {
			t.Errorf("%s: ingress from %s on the api port: allowed %v, want %v", rc.w, what, got, c.want)
		}
	}
	if got := n.ingress(rc.w.labels, crm, dest{port: apiPort.port + 1, proto: corev1.ProtocolTCP}); got {
		t.Errorf("%s: ingress from a labelled namespace on another port: allowed", rc.w)
	}
}

// NATS admits the roles on the client port, its own nodes on the cluster
// port and Prometheus on the monitoring port, and each of them only there;
// it connects only to its own nodes (routes) and DNS.
func TestNATSNetworkPolicy(t *testing.T) {
	m := load(t)
	n := newPolicyNet(t, m)
	nats := natsStatefulSet(t, m)
	pod := nats.w.labels
	client, cluster, monitor := containerDest(t, nats.w, "client"), containerDest(t, nats.w, "cluster"), containerDest(t, nats.w, "monitor")
	prometheus := inNamespace(monitoring, map[string]string{"app.kubernetes.io/name": "prometheus"})
	check := func(what string, got, want bool) {
		if got != want {
			t.Errorf("%s: %s: allowed %v, want %v", nats.w, what, got, want)
		}
	}
	for _, rc := range roleContainers(t, m) {
		role := n.inNS(rc.w.labels)
		check("ingress from "+rc.w.owner.name+" on the client port", n.ingress(pod, role, client), true)
		check("ingress from "+rc.w.owner.name+" on the cluster port", n.ingress(pod, role, cluster), false)
		check("ingress from "+rc.w.owner.name+" on the monitoring port", n.ingress(pod, role, monitor), false)
	}
	self := n.inNS(pod)
	check("ingress from a NATS node on the cluster port", n.ingress(pod, self, cluster), true)
	check("ingress from Prometheus on the monitoring port", n.ingress(pod, prometheus, monitor), true)
	check("ingress from Prometheus on the client port", n.ingress(pod, prometheus, client), false)
	check("ingress from an unlabelled namespace on the client port", n.ingress(pod, inNamespace("default", map[string]string{}), client), false)
	check("ingress from a pod of this namespace that is no role", n.ingress(pod, n.inNS(map[string]string{"app.kubernetes.io/name": "debug"}), client), false)
	check("egress to a NATS node's cluster port", n.egress(pod, self, cluster), true)
	check("egress to a NATS node's client port", n.egress(pod, self, client), false)
	check("egress to DNS over UDP", n.egress(pod, inNamespace(kubeSystem, map[string]string{"k8s-app": "kube-dns"}), dest{port: 53, proto: corev1.ProtocolUDP}), true)
	check("egress to an address outside", n.egress(pod, peer{ip: net.ParseIP(outsideAddr)}, dest{port: 443, proto: corev1.ProtocolTCP}), false)
}

// The evaluator itself: a selected pod with no rule admits nothing, an
// unselected pod everything, and ports by name or number.
func TestPolicyEvaluator(t *testing.T) {
	tcp := corev1.ProtocolTCP
	pol := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"a": "1"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"b": "1"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromString("web"))}},
		}},
	}}
	n := &policyNet{t: t, ns: map[string]string{nsLabel: "x"}, pol: []*networkingv1.NetworkPolicy{pol}}
	a, b := map[string]string{"a": "1"}, map[string]string{"b": "1"}
	web := dest{port: 80, name: "web", proto: tcp}
	for what, c := range map[string]struct{ got, want bool }{
		"b to a's web":              {n.ingress(a, n.inNS(b), web), true},
		"b to a's 80 without name":  {n.ingress(a, n.inNS(b), dest{port: 80, proto: tcp}), false},
		"a to a's web":              {n.ingress(a, n.inNS(a), web), false},
		"b in another ns to a":      {n.ingress(a, inNamespace("y", b), web), false},
		"anyone to b (unselected)":  {n.ingress(b, n.inNS(a), web), true},
		"a's egress (not isolated)": {n.egress(a, peer{ip: net.ParseIP(outsideAddr)}, web), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", what, c.got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
