// Package deployments tests the Kubernetes manifests in k8s/: that each
// document decodes strictly into its API type (this file), and that the
// objects are wired to one another, to the callcontrol binary (built by
// binary_test.go) and to the NATS configuration of nats/ (the other
// files); and the alert rules of prometheus/: their promtool-format unit
// tests (alerts_test.go) and what they select and link to
// (alertrules_test.go). It has no code but its tests.
package deployments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) {
			removeBinary()
			os.Exit(code)
		}),
		// nats-server keeps a few process-wide goroutines after shutdown.
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).logRejectedTLSConns"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).syncBlocks"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

// k8sDir holds the manifests; kustomization.yaml and the example Secret
// are not applied as they are, but the example is read: it is the one place
// that says which keys the real Secret must have.
const (
	k8sDir        = "k8s"
	kustomization = "kustomization.yaml"
	exampleSecret = "secret.example.yaml"
)

// kinds maps apiVersion/kind to a new value of its Go type. A kind missing
// here fails the load, so a new kind of object cannot slip in unchecked.
var kinds = map[string]func() any{
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	// Prometheus Operator CRDs: local structs (monitoring_test.go).
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &serviceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &prometheusRule{} },
}

// object is one YAML document of k8s/, decoded into its type.
type object struct {
	file string // base name
	kind string
	name string
	meta metav1.ObjectMeta
	obj  any
	// strict holds the fields strict decoding refused (unknown, duplicate);
	// obj is decoded without them, as the API server would store it.
	strict []error
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.name, o.file) }

// manifests is every object of k8s/, by kind and name.
type manifests struct {
	objects      []object
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	pdbs         map[string]*policyv1.PodDisruptionBudget
	netpols      map[string]*networkingv1.NetworkPolicy

	serviceMonitors map[string]*serviceMonitor
	prometheusRules map[string]*prometheusRule
}

// load reads and strictly decodes every YAML file of k8s/ but the
// kustomization. It fails the test on the first bad document.
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		services: map[string]*corev1.Service{}, deployments: map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		netpols:         map[string]*networkingv1.NetworkPolicy{},
		serviceMonitors: map[string]*serviceMonitor{}, prometheusRules: map[string]*prometheusRule{},
	}
	files, err := manifestFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		objs, err := decodeFile(filepath.Join(k8sDir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%s: no object in it", f)
		}
		for _, o := range objs {
			o.file = f
			if err := m.add(o); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

// manifestFiles is the YAML files of k8s/ but the kustomization, sorted.
func manifestFiles() ([]string, error) {
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != kustomization {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *manifests) add(o object) error {
	for _, p := range m.objects {
		if p.kind == o.kind && p.name == o.name {
			return fmt.Errorf("%s: defined twice (also in %s)", o, p.file)
		}
	}
	m.objects = append(m.objects, o)
	switch v := o.obj.(type) {
	case *corev1.ConfigMap:
		m.configMaps[o.name] = v
	case *corev1.Secret:
		m.secrets[o.name] = v
	case *corev1.Service:
		m.services[o.name] = v
	case *appsv1.Deployment:
		m.deployments[o.name] = v
	case *appsv1.StatefulSet:
		m.statefulSets[o.name] = v
	case *policyv1.PodDisruptionBudget:
		m.pdbs[o.name] = v
	case *networkingv1.NetworkPolicy:
		m.netpols[o.name] = v
	case *serviceMonitor:
		m.serviceMonitors[o.name] = v
	case *prometheusRule:
		m.prometheusRules[o.name] = v
	default:
		return fmt.Errorf("%s: no map for this kind", o)
	}
	return nil
}

// decodeFile splits a file into its YAML documents (on "---" lines, as
// kubectl does) and decodes each non-empty one.
func decodeFile(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		o, empty, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if !empty {
			out = append(out, o)
		}
	}
}

// decode decodes one document into the Go type of its apiVersion and
// kind the way the API server's strict field validation does: keys match
// case-sensitively, and unknown or duplicate fields are listed in
// o.strict (kubectl would drop an unknown field with at most a warning, and
// the setting would silently never reach the pod). A document of comments
// only is empty.
func decode(doc []byte) (o object, empty bool, err error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return o, false, err
	}
	if s := string(bytes.TrimSpace(js)); s == "null" || s == "" {
		return o, true, nil
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return o, false, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObj, ok := kinds[key]
	if !ok {
		return o, false, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows (add it to kinds)", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return o, false, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	meta, err := objectMeta(js)
	if err != nil {
		return o, false, err
	}
	if meta.Name == "" {
		return o, false, fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	return object{kind: tm.Kind, name: meta.Name, meta: meta, obj: obj, strict: strict}, false, nil
}

func objectMeta(js []byte) (metav1.ObjectMeta, error) {
	var v struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	err := kjson.UnmarshalCaseSensitivePreserveInts(js, &v)
	return v.Metadata, err
}

// The decoder itself must refuse what kubectl would silently drop, or every
// check below would pass on objects that never reach the cluster as written.
func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"field under metadata": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  CALLCONTROL_NATS_URL: nats://n\n",
		"misspelt field":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatas: {A: b}\n",
		"wrong case":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nDATA: {A: b}\n",
		"duplicate key":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: b}\ndata: {A: c}\n",
		"unknown kind":         "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"no name":              "apiVersion: v1\nkind: ConfigMap\ndata: {A: b}\n",
	} {
		if o, _, err := decode([]byte(doc)); err == nil && len(o.strict) == 0 {
			t.Errorf("%s: decoded without error", name)
		}
	}
	o, _, err := decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: b}\n"))
	if err != nil || len(o.strict) > 0 {
		t.Fatalf("a valid ConfigMap: %v %v", err, o.strict)
	}
	if got := o.obj.(*corev1.ConfigMap).Data["A"]; got != "b" {
		t.Errorf("a valid ConfigMap: data A = %q, want b", got)
	}
}

// Every document of every manifest decodes strictly, and none pins a
// namespace: kustomization.yaml sets it, so that one line decides where
// everything goes. (The other tests check the objects as the API server
// would store them, without the fields refused here.)
func TestManifestsDecode(t *testing.T) {
	m := load(t)
	for _, o := range m.objects {
		for _, err := range o.strict {
			t.Errorf("%s: %v", o, err)
		}
		if o.meta.Namespace != "" {
			t.Errorf("%s: sets metadata.namespace %q; the kustomization sets it", o, o.meta.Namespace)
		}
	}
}

// kustomizationFile is the part of a kustomize Kustomization these
// manifests use; decoded strictly, so a field added to the file must be
// added here, and checked.
type kustomizationFile struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
}

// kubectl apply -k applies only what the kustomization lists: a manifest
// left out is never applied, one listed but missing fails the apply. The
// example Secret must stay out: its passwords are placeholders.
func TestKustomizationListsEveryManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, kustomization))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomizationFile
	strict, err := kjson.UnmarshalStrict(js, &k)
	if err = errors.Join(append(strict, err)...); err != nil {
		t.Fatalf("%s: %v", kustomization, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", kustomization, k.APIVersion, k.Kind)
	}
	if k.Namespace == "" {
		t.Errorf("%s: no namespace", kustomization)
	}
	files, err := manifestFiles()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(files, func(f string) bool { return f == exampleSecret })
	got := slices.Clone(k.Resources)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: resources %v, want the manifests %v", kustomization, got, want)
	}
}

// The example Secret is committed: every value in it must be an obvious
// placeholder, never a password someone could take for a real one.
func TestExampleSecretHoldsPlaceholders(t *testing.T) {
	m := load(t)
	n := 0
	for _, o := range m.objects {
		s, ok := o.obj.(*corev1.Secret)
		if !ok {
			continue
		}
		if o.file != exampleSecret {
			t.Errorf("%s: a Secret outside %s would be applied with its values", o, exampleSecret)
		}
		for k, v := range s.StringData {
			n++
			if !strings.HasPrefix(v, "CHANGE-ME") {
				t.Errorf("%s: %s = %q, want a CHANGE-ME placeholder", o, k, v)
			}
		}
		for k := range s.Data {
			t.Errorf("%s: data %s: use stringData with a CHANGE-ME placeholder", o, k)
		}
	}
	if n == 0 {
		t.Errorf("%s: no Secret values", exampleSecret)
	}
}
