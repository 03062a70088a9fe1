package deployments

import (
	"net/http"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Prometheus Operator's monitoring.coreos.com/v1 kinds are not in
// k8s.io/api. These structs hold only the fields the manifests use, with
// the CRDs' JSON names; decoded strictly, a field the CRD has but these
// lack fails the decode, and is added here once checked against the CRD.

type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta  `json:"metadata"`
	Spec            serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	JobLabel          string               `json:"jobLabel,omitempty"`
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector *struct {
		Any        bool     `json:"any,omitempty"`
		MatchNames []string `json:"matchNames,omitempty"`
	} `json:"namespaceSelector,omitempty"`
	Endpoints []monitorEndpoint `json:"endpoints"`
}

type monitorEndpoint struct {
	Port          string          `json:"port,omitempty"`
	Path          string          `json:"path,omitempty"`
	Scheme        string          `json:"scheme,omitempty"`
	Interval      string          `json:"interval,omitempty"`
	ScrapeTimeout string          `json:"scrapeTimeout,omitempty"`
	Relabelings   []relabelConfig `json:"relabelings,omitempty"`
}

type relabelConfig struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    *string  `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

type ruleGroup struct {
	Name     string            `json:"name"`
	Interval string            `json:"interval,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Rules    []rule            `json:"rules"`
}

type rule struct {
	Record        string             `json:"record,omitempty"`
	Alert         string             `json:"alert,omitempty"`
	Expr          intstr.IntOrString `json:"expr"`
	For           string             `json:"for,omitempty"`
	KeepFiringFor string             `json:"keep_firing_for,omitempty"`
	Labels        map[string]string  `json:"labels,omitempty"`
	Annotations   map[string]string  `json:"annotations,omitempty"`
}

// The ServiceMonitor scrapes the health Service, and only it, on a port
// the Service has, at a path the binary serves (TestMetricsPathAnswers),
// and gives each role its own job, from the pods' name label.
func TestServiceMonitorScrapesHealth(t *testing.T) {
	m := load(t)
	if len(m.serviceMonitors) == 0 {
		t.Fatal("no ServiceMonitor")
	}
	health := m.services["callcontrol-health"]
	if health == nil {
		t.Fatal("no Service callcontrol-health")
	}
	for _, name := range sortedKeys(m.serviceMonitors) {
		sm := m.serviceMonitors[name]
		var picked []string
		for _, svcName := range sortedKeys(m.services) {
			if labelSelects(t, &sm.Spec.Selector, m.services[svcName].Labels) {
				picked = append(picked, svcName)
			}
		}
		if !slices.Equal(picked, []string{"callcontrol-health"}) {
			t.Errorf("ServiceMonitor %s selects the Services %v, want [callcontrol-health]", name, picked)
		}
		if ns := sm.Spec.NamespaceSelector; ns != nil && (ns.Any || len(ns.MatchNames) > 0) {
			t.Errorf("ServiceMonitor %s: a namespaceSelector; the Service is in its own namespace", name)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor %s: no endpoints", name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(health.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("ServiceMonitor %s: endpoint port %q is no port name of Service callcontrol-health", name, ep.Port)
			}
			if ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor %s: path %q, want /metrics", name, ep.Path)
			}
			if !jobFromPodName(ep.Relabelings) {
				t.Errorf("ServiceMonitor %s: no relabeling sets job from __meta_kubernetes_pod_label_app_kubernetes_io_name", name)
			}
		}
	}
	jobs := map[string]bool{}
	for _, rc := range roleContainers(t, m) {
		jobs[rc.w.labels["app.kubernetes.io/name"]] = true
	}
	if len(jobs) < 2 || jobs[""] {
		t.Errorf("the worker and poller pods' app.kubernetes.io/name labels %v do not make one job per role", jobs)
	}
}

// jobFromPodName reports whether the relabelings set job to the pod's
// app.kubernetes.io/name label as it is (replace, default regex and
// replacement, as the operator defaults them).
func jobFromPodName(rs []relabelConfig) bool {
	for _, r := range rs {
		if r.TargetLabel == "job" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"}) &&
			(r.Action == "" || r.Action == "replace") && (r.Regex == "" || r.Regex == "(.*)") &&
			(r.Replacement == nil || *r.Replacement == "$1") {
			return true
		}
	}
	return false
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// The PrometheusRule is a valid rule file whatever groups it holds (they
// are maintained with deployments/prometheus/): named groups, each rule an
// alert with an expression and a severity, durations Prometheus parses.
func TestPrometheusRuleWellFormed(t *testing.T) {
	m := load(t)
	if len(m.prometheusRules) == 0 {
		t.Fatal("no PrometheusRule")
	}
	for _, name := range sortedKeys(m.prometheusRules) {
		pr := m.prometheusRules[name]
		if len(pr.Spec.Groups) == 0 {
			t.Errorf("PrometheusRule %s: no groups", name)
		}
		seen := map[string]bool{}
		for _, g := range pr.Spec.Groups {
			if g.Name == "" || seen[g.Name] {
				t.Errorf("PrometheusRule %s: group name %q empty or repeated", name, g.Name)
			}
			seen[g.Name] = true
			if len(g.Rules) == 0 {
				t.Errorf("PrometheusRule %s group %s: no rules", name, g.Name)
			}
			if g.Interval != "" && !promDuration.MatchString(g.Interval) {
				t.Errorf("PrometheusRule %s group %s: interval %q", name, g.Name, g.Interval)
			}
			for i, r := range g.Rules {
				if r.Alert == "" || r.Expr.String() == "" || r.Expr.String() == "0" {
					t.Errorf("PrometheusRule %s group %s rule %d: want alert and expr, got alert %q expr %q", name, g.Name, i, r.Alert, r.Expr.String())
				}
				if r.Labels["severity"] == "" {
					t.Errorf("PrometheusRule %s alert %s: no labels.severity", name, r.Alert)
				}
				for _, d := range []string{r.For, r.KeepFiringFor} {
					if d != "" && !promDuration.MatchString(d) {
						t.Errorf("PrometheusRule %s alert %s: duration %q", name, r.Alert, d)
					}
				}
			}
		}
	}
}

// Each ServiceMonitor path answers 200 on the real worker, poller and api,
// also before they have reached NATS.
func TestMetricsPathAnswers(t *testing.T) {
	m := load(t)
	var paths []string
	for _, sm := range m.serviceMonitors {
		for _, ep := range sm.Spec.Endpoints {
			paths = append(paths, ep.Path)
		}
	}
	if len(paths) == 0 {
		t.Fatal("no ServiceMonitor endpoint")
	}
	for _, role := range []string{"worker", "poller", "api"} {
		t.Run(role, func(t *testing.T) {
			base := startRole(t, role)
			for _, p := range paths {
				waitStatus(t, base+p, http.StatusOK)
			}
		})
	}
}
