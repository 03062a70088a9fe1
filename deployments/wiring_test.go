package deployments

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// workload is the pod template of a Deployment or StatefulSet.
type workload struct {
	owner  object
	labels map[string]string
	spec   *corev1.PodSpec
	claims map[string]bool // volumeClaimTemplates (StatefulSet): volumes by name
}

func (w workload) String() string { return w.owner.String() }

func (m *manifests) workloads() []workload {
	var out []workload
	for _, o := range m.objects {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{owner: o, labels: v.Spec.Template.Labels, spec: &v.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			claims := map[string]bool{}
			for _, c := range v.Spec.VolumeClaimTemplates {
				claims[c.Name] = true
			}
			out = append(out, workload{owner: o, labels: v.Spec.Template.Labels, spec: &v.Spec.Template.Spec, claims: claims})
		}
	}
	return out
}

// allContainers is the containers and init containers of a pod.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// imageName is an image reference without registry path, tag or digest.
func imageName(image string) string {
	image, _, _ = strings.Cut(image, "@")
	image = path.Base(image)
	image, _, _ = strings.Cut(image, ":")
	return image
}

// roleContainer is a container that runs the callcontrol binary as one of
// its roles (its first argument).
type roleContainer struct {
	w    workload
	c    *corev1.Container
	role string
}

func (r roleContainer) String() string { return fmt.Sprintf("%s container %s", r.w, r.c.Name) }

// roleContainers finds every callcontrol container, and fails unless it
// finds a worker, a poller and an api: with none, every check over them
// would pass.
func roleContainers(t *testing.T, m *manifests) []roleContainer {
	t.Helper()
	var out []roleContainer
	seen := map[string]bool{}
	for _, w := range m.workloads() {
		for _, c := range allContainers(w.spec) {
			if imageName(c.Image) != "callcontrol" {
				continue
			}
			if len(c.Args) == 0 {
				t.Fatalf("%s container %s: callcontrol without a role argument", w, c.Name)
			}
			out = append(out, roleContainer{w: w, c: c, role: c.Args[0]})
			seen[c.Args[0]] = true
		}
	}
	if !seen["worker"] || !seen["poller"] || !seen["api"] {
		t.Fatalf("callcontrol containers with roles %v, want worker, poller and api", seen)
	}
	return out
}

// envValue is one environment variable of a container and where it comes
// from; value is what the pod would see with the example Secret (empty
// for a fieldRef or resourceFieldRef).
type envValue struct {
	value  string
	source string
}

// containerEnv is the environment the kubelet gives c: envFrom in order,
// then env, a later entry replacing an earlier one. References to objects
// that do not exist are left out here; TestReferencesResolve fails them.
func containerEnv(m *manifests, c *corev1.Container) map[string]envValue {
	env := map[string]envValue{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			if cm, ok := m.configMaps[from.ConfigMapRef.Name]; ok {
				for k, v := range cm.Data {
					env[from.Prefix+k] = envValue{v, "ConfigMap " + cm.Name}
				}
			}
		case from.SecretRef != nil:
			if s, ok := m.secrets[from.SecretRef.Name]; ok {
				for k, v := range secretData(s) {
					env[from.Prefix+k] = envValue{v, "Secret " + s.Name}
				}
			}
		}
	}
	for _, e := range c.Env {
		v := envValue{e.Value, "env"}
		if f := e.ValueFrom; f != nil {
			switch {
			case f.ConfigMapKeyRef != nil:
				v = envValue{m.configMaps[f.ConfigMapKeyRef.Name].Data[f.ConfigMapKeyRef.Key], "ConfigMap " + f.ConfigMapKeyRef.Name}
			case f.SecretKeyRef != nil:
				s, ok := m.secrets[f.SecretKeyRef.Name]
				v = envValue{"", "Secret " + f.SecretKeyRef.Name}
				if ok {
					v.value = secretData(s)[f.SecretKeyRef.Key]
				}
			default:
				v = envValue{"", "field"}
			}
		}
		env[e.Name] = v
	}
	return env
}

// secretData is a Secret's keys and values, stringData and data together
// (the API server merges them the same way).
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// configMapHas reports whether ConfigMap name exists and has key.
func (m *manifests) configMapHas(name, key string) (exists, has bool) {
	cm, ok := m.configMaps[name]
	if !ok {
		return false, false
	}
	_, inData := cm.Data[key]
	_, inBinary := cm.BinaryData[key]
	return true, inData || inBinary
}

func (m *manifests) secretHas(name, key string) (exists, has bool) {
	s, ok := m.secrets[name]
	if !ok {
		return false, false
	}
	_, has = secretData(s)[key]
	return true, has
}

// refError describes a reference to ConfigMap or Secret name and key
// (key "" for the whole object) that does not resolve, or "".
func refError(kind, name, key string, exists, has bool) string {
	switch {
	case !exists:
		return fmt.Sprintf("%s %s is defined nowhere in %s", kind, name, k8sDir)
	case key != "" && !has:
		return fmt.Sprintf("%s %s has no key %s", kind, name, key)
	}
	return ""
}

// Every ConfigMap, Secret and key a pod reads (envFrom, env valueFrom,
// volumes) exists in k8s/: the Secrets and the gateway CA as the examples
// in secret.example.yaml show them. A missing key stops the pod from
// starting (CreateContainerConfigError) or leaves a file out of its volume.
func TestReferencesResolve(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads() {
		var errs []string
		add := func(s string) {
			if s != "" {
				errs = append(errs, s)
			}
		}
		for _, c := range allContainers(w.spec) {
			for _, from := range c.EnvFrom {
				switch {
				case from.ConfigMapRef != nil:
					e, h := m.configMapHas(from.ConfigMapRef.Name, "")
					add(refError("ConfigMap", from.ConfigMapRef.Name, "", e, h))
				case from.SecretRef != nil:
					e, h := m.secretHas(from.SecretRef.Name, "")
					add(refError("Secret", from.SecretRef.Name, "", e, h))
				}
			}
			for _, e := range c.Env {
				switch f := e.ValueFrom; {
				case f == nil:
				case f.ConfigMapKeyRef != nil:
					ex, h := m.configMapHas(f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key)
					add(refError("ConfigMap", f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key, ex, h))
				case f.SecretKeyRef != nil:
					ex, h := m.secretHas(f.SecretKeyRef.Name, f.SecretKeyRef.Key)
					add(refError("Secret", f.SecretKeyRef.Name, f.SecretKeyRef.Key, ex, h))
				}
			}
			for _, vm := range c.VolumeMounts {
				if !hasVolume(w, vm.Name) {
					add(fmt.Sprintf("container %s mounts volume %s, which the pod does not have", c.Name, vm.Name))
				}
			}
		}
		for _, v := range w.spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				e, h := m.configMapHas(v.ConfigMap.Name, "")
				add(refError("ConfigMap", v.ConfigMap.Name, "", e, h))
				for _, it := range v.ConfigMap.Items {
					e, h := m.configMapHas(v.ConfigMap.Name, it.Key)
					add(refError("ConfigMap", v.ConfigMap.Name, it.Key, e, h))
				}
			case v.Secret != nil:
				e, h := m.secretHas(v.Secret.SecretName, "")
				add(refError("Secret", v.Secret.SecretName, "", e, h))
				for _, it := range v.Secret.Items {
					e, h := m.secretHas(v.Secret.SecretName, it.Key)
					add(refError("Secret", v.Secret.SecretName, it.Key, e, h))
				}
			case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
			default:
				add(fmt.Sprintf("volume %s: a kind of volume this test does not check", v.Name))
			}
		}
		for _, e := range errs {
			t.Errorf("%s: %s", w, e)
		}
	}
}

func hasVolume(w workload, name string) bool {
	for _, v := range w.spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return w.claims[name]
}

// Every CALLCONTROL_* variable a callcontrol container gets, from the
// ConfigMap or its own env, is a flag of the role it runs. The binary
// ignores a variable that names no flag of its role, so a misspelt or
// misplaced setting would be silently without effect.
func TestSettingsAreRoleFlags(t *testing.T) {
	m := load(t)
	for _, rc := range roleContainers(t, m) {
		flags := roleFlags(t, rc.role)
		env := containerEnv(m, rc.c)
		for _, name := range sortedKeys(env) {
			flag, ok := envFlag(name)
			if _, known := flags[flag]; ok && !known {
				t.Errorf("%s: %s (from %s) is no flag of `callcontrol %s` (no --%s)", rc, name, env[name].source, rc.role, flag)
			}
		}
	}
}

// requiredSettings are the settings whose default cannot work in a pod:
// the NATS URL defaults to 127.0.0.1, the stream replicas to 1 (a 3-node
// cluster needs 3), the health endpoint to off (the probes need it), and
// both roles talk to the gateway.
var requiredSettings = []string{
	"CALLCONTROL_NATS_URL", "CALLCONTROL_NATS_USER", "CALLCONTROL_REPLICAS",
	"CALLCONTROL_HEALTH_LISTEN", "CALLCONTROL_GATEWAY_URL",
}

// apiRequiredSettings are requiredSettings for the api role, which talks
// to no gateway: its listener (the default is fine, but say it), its
// token file and its TLS certificate (off loopback it refuses plain HTTP).
var apiRequiredSettings = []string{
	"CALLCONTROL_NATS_URL", "CALLCONTROL_NATS_USER", "CALLCONTROL_REPLICAS",
	"CALLCONTROL_HEALTH_LISTEN", "CALLCONTROL_API_LISTEN", "CALLCONTROL_API_TOKENS",
	"CALLCONTROL_API_TLS_CERT", "CALLCONTROL_API_TLS_KEY",
}

// roleRequiredSettings is the settings role cannot do without in a pod.
func roleRequiredSettings(role string) []string {
	if role == "api" {
		return apiRequiredSettings
	}
	return requiredSettings
}

// The settings a role cannot do without reach each callcontrol container.
// A key put anywhere else in the ConfigMap than data (under metadata, say)
// reaches no pod.
func TestRequiredSettingsReachPods(t *testing.T) {
	m := load(t)
	for _, rc := range roleContainers(t, m) {
		env := containerEnv(m, rc.c)
		for _, name := range roleRequiredSettings(rc.role) {
			if env[name].value == "" {
				t.Errorf("%s: %s is not set (from the ConfigMap's data or the container's env)", rc, name)
			}
		}
	}
}

// Each setting that names a file (an absolute path: the NATS password, the
// gateway CA) names one the pod has: a key of a ConfigMap or Secret
// mounted at that path. Otherwise the role fails at start.
func TestSettingFilesAreMounted(t *testing.T) {
	m := load(t)
	for _, rc := range roleContainers(t, m) {
		env := containerEnv(m, rc.c)
		n := 0
		for _, name := range sortedKeys(env) {
			v := env[name].value
			if _, ok := envFlag(name); !ok || !strings.HasPrefix(v, "/") {
				continue
			}
			n++
			if _, _, _, err := mountedFile(m, rc.w, rc.c, v); err != nil {
				t.Errorf("%s: %s=%s: %v", rc, name, v, err)
			}
		}
		if n == 0 {
			t.Errorf("%s: no setting names a file; the NATS password should come as one", rc)
		}
	}
}

// mountedFile finds which ConfigMap or Secret key provides file in
// container c: the kind ("ConfigMap" or "Secret"), the object's name and
// the key.
func mountedFile(m *manifests, w workload, c *corev1.Container, file string) (kind, name, key string, err error) {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if vm.SubPath != "" {
			return "", "", "", fmt.Errorf("mounted with subPath (not checked here)")
		}
		for _, v := range w.spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				key, err := volumeKey(rel, v.ConfigMap.Items)
				if err != nil {
					return "", "", "", fmt.Errorf("ConfigMap %s: %w", v.ConfigMap.Name, err)
				}
				if _, has := m.configMapHas(v.ConfigMap.Name, key); !has {
					return "", "", "", fmt.Errorf("ConfigMap %s has no key %s", v.ConfigMap.Name, key)
				}
				return "ConfigMap", v.ConfigMap.Name, key, nil
			case v.Secret != nil:
				key, err := volumeKey(rel, v.Secret.Items)
				if err != nil {
					return "", "", "", fmt.Errorf("Secret %s: %w", v.Secret.SecretName, err)
				}
				if _, has := m.secretHas(v.Secret.SecretName, key); !has {
					return "", "", "", fmt.Errorf("Secret %s has no key %s", v.Secret.SecretName, key)
				}
				return "Secret", v.Secret.SecretName, key, nil
			}
			return "", "", "", fmt.Errorf("volume %s is neither a ConfigMap nor a Secret", v.Name)
		}
	}
	return "", "", "", fmt.Errorf("no volume is mounted there")
}

// volumeKey is the key that appears as file rel in a ConfigMap or Secret
// volume: with items, only the items' paths exist.
func volumeKey(rel string, items []corev1.KeyToPath) (string, error) {
	if len(items) == 0 {
		return rel, nil
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key, nil
		}
	}
	return "", fmt.Errorf("its items project no %s", rel)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
