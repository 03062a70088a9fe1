package deployments

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// selects reports whether a Service-style selector picks a pod with the
// given labels. An empty selector selects nothing here: a Service or
// policy meant for everything is not what these manifests want.
func selects(sel, podLabels map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))
}

// labelSelects is selects for a metav1.LabelSelector (matchLabels and
// matchExpressions).
func labelSelects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(podLabels))
}

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }

// selectedBy is the workloads whose pods a selector picks.
func selectedBy(ws []workload, match func(map[string]string) bool) []workload {
	var out []workload
	for _, w := range ws {
		if match(w.labels) {
			out = append(out, w)
		}
	}
	return out
}

func names(ws []workload) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.owner.name)
	}
	return out
}

// Each workload's own selector picks its pod template (the API server
// refuses one that does not, but only at apply time).
func TestWorkloadSelectorsMatchTemplates(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads() {
		var sel *metav1.LabelSelector
		switch v := w.owner.obj.(type) {
		case *appsv1.Deployment:
			sel = v.Spec.Selector
		case *appsv1.StatefulSet:
			sel = v.Spec.Selector
		}
		if !labelSelects(t, sel, w.labels) {
			t.Errorf("%s: selector %v does not select its own pod template %v", w, sel, w.labels)
		}
	}
}

// Every Service selects pods, and each of its target ports is a port of
// every pod it selects (a pod without it gets no endpoint for that port).
// The health Service selects exactly the callcontrol pods, the only ones
// with a health port.
func TestServicesSelectPods(t *testing.T) {
	m := load(t)
	ws := m.workloads()
	for _, name := range sortedKeys(m.services) {
		svc := m.services[name]
		sel := selectedBy(ws, func(l map[string]string) bool { return selects(svc.Spec.Selector, l) })
		if len(sel) == 0 {
			t.Errorf("Service %s: selector %v selects no pods", name, svc.Spec.Selector)
		}
		for _, w := range sel {
			for _, p := range svc.Spec.Ports {
				if !podHasPort(w, p.TargetPort, p.Port) {
					t.Errorf("Service %s: port %s: the pods of %s have no port %s", name, p.Name, w, p.TargetPort.String())
				}
			}
		}
	}
	var roles []workload
	for _, rc := range roleContainers(t, m) {
		roles = append(roles, rc.w)
	}
	health, ok := m.services["callcontrol-health"]
	if !ok {
		t.Fatal("no Service callcontrol-health")
	}
	got := selectedBy(ws, func(l map[string]string) bool { return selects(health.Spec.Selector, l) })
	if !sameSet(names(got), names(roles)) {
		t.Errorf("Service callcontrol-health selects %v, want the callcontrol pods %v", names(got), names(roles))
	}
	checkAPIService(t, m, ws)
}

// checkAPIService: the Service callcontrol-api selects exactly the api
// pods, on their API port only.
func checkAPIService(t *testing.T, m *manifests, ws []workload) {
	t.Helper()
	var apis []workload
	for _, rc := range roleContainers(t, m) {
		if rc.role == "api" {
			apis = append(apis, rc.w)
		}
	}
	svc, ok := m.services["callcontrol-api"]
	if !ok {
		t.Fatal("no Service callcontrol-api")
	}
	got := selectedBy(ws, func(l map[string]string) bool { return selects(svc.Spec.Selector, l) })
	if !sameSet(names(got), names(apis)) {
		t.Errorf("Service callcontrol-api selects %v, want the api pods %v", names(got), names(apis))
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.String() != "api" {
			t.Errorf("Service callcontrol-api: port %s targets %s, want the api port only", p.Name, p.TargetPort.String())
		}
	}
}

// podHasPort reports whether a container of w has the target port (by
// name, or by number; an unset target port is the Service port).
func podHasPort(w workload, target intstr.IntOrString, port int32) bool {
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(port)
	}
	for _, c := range allContainers(w.spec) {
		if _, ok := probePort(c, target); ok {
			return true
		}
	}
	return false
}

// Every workload has exactly one PodDisruptionBudget, which lets a node
// drain go on (it allows at least one pod down) and, for NATS, never takes
// two of the three nodes, so JetStream keeps its quorum.
func TestDisruptionBudgets(t *testing.T) {
	m := load(t)
	ws := m.workloads()
	covered := map[string]int{}
	for _, name := range sortedKeys(m.pdbs) {
		pdb := m.pdbs[name]
		sel := selectedBy(ws, func(l map[string]string) bool { return labelSelects(t, pdb.Spec.Selector, l) })
		if len(sel) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want one workload", name, names(sel))
			continue
		}
		w := sel[0]
		covered[w.owner.String()]++
		if err := budgetProblem(pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable, workloadReplicas(w)); err != nil {
			t.Errorf("PodDisruptionBudget %s (%s): %v", name, w, err)
		}
		if _, isNATS := w.owner.obj.(*appsv1.StatefulSet); isNATS {
			if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.String() != "1" {
				t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, want 1: two nodes of three down is no quorum", name, mu)
			}
		}
	}
	for _, w := range ws {
		if covered[w.owner.String()] != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets, want 1", w, covered[w.owner.String()])
		}
	}
}

func workloadReplicas(w workload) int32 {
	switch v := w.owner.obj.(type) {
	case *appsv1.Deployment:
		return replicas(v.Spec.Replicas)
	case *appsv1.StatefulSet:
		return replicas(v.Spec.Replicas)
	}
	return 0
}

// budgetProblem says why a budget would block every voluntary eviction
// (or is malformed), for integer budgets; percentages are not used here.
func budgetProblem(minAvailable, maxUnavailable *intstr.IntOrString, replicas int32) error {
	switch {
	case (minAvailable == nil) == (maxUnavailable == nil):
		return fmt.Errorf("want exactly one of minAvailable and maxUnavailable")
	case minAvailable != nil && minAvailable.Type != intstr.Int, maxUnavailable != nil && maxUnavailable.Type != intstr.Int:
		return fmt.Errorf("a percentage (not checked here)")
	case minAvailable != nil && minAvailable.IntVal >= replicas:
		return fmt.Errorf("minAvailable %d with %d replicas allows no eviction: a node drain would hang", minAvailable.IntVal, replicas)
	case maxUnavailable != nil && maxUnavailable.IntVal < 1:
		return fmt.Errorf("maxUnavailable %d allows no eviction: a node drain would hang", maxUnavailable.IntVal)
	}
	return nil
}

// replicas is a replicas field with the API's default of 1.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}
