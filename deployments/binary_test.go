package deployments

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The flags a role accepts are taken from the real binary's usage text
// (`callcontrol <role> -h`), not from parsing its source: flags are
// registered by helpers shared between roles (natsFlags, healthFlags, …),
// so only the running program knows which role has which. Hidden flags
// (bench-only) are left out of -h on purpose and so count as unknown here.

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// binary builds cmd/callcontrol once per test process.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "callcontrol-deployments-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "callcontrol")
		out, err := exec.Command("go", "build", "-o", built.bin, "github.com/callcontrol/callcontrol/cmd/callcontrol").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func removeBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// cleanEnv is the environment the binary runs with in these tests: none of
// the test process's CALLCONTROL_* variables, which it would read.
func cleanEnv(extra ...string) []string {
	env := []string{"HOME=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}
	return append(env, extra...)
}

var (
	roleFlagsMu    sync.Mutex
	roleFlagsCache = map[string]map[string]string{}
	flagLine       = regexp.MustCompile(`^  --?([a-z0-9][a-z0-9-]*)\b`)
	defaultValue   = regexp.MustCompile(`\(default (.*)\)$`)
)

// roleFlags maps each flag (without dashes) that `callcontrol <role> -h`
// lists to its default as printed there ("" for none).
func roleFlags(t *testing.T, role string) map[string]string {
	t.Helper()
	roleFlagsMu.Lock()
	defer roleFlagsMu.Unlock()
	if f, ok := roleFlagsCache[role]; ok {
		return f
	}
	cmd := exec.Command(binary(t), role, "-h")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	// -h exits 0 after printing the usage; anything else means the role
	// or the usage text changed, and the list below would be wrong.
	if err != nil || !strings.HasPrefix(stderr.String(), "usage: callcontrol "+role+" ") {
		t.Fatalf("callcontrol %s -h: %v, want exit 0 and its usage:\n%s", role, err, stderr.String())
	}
	// The usage prints "  --name type" under each group and then the
	// usage, indented, ending in "(default X)" where the default is not
	// the zero value.
	flags := map[string]string{}
	last := ""
	for _, line := range strings.Split(stderr.String(), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = ""
		} else if m := defaultValue.FindStringSubmatch(strings.TrimSpace(line)); m != nil && last != "" {
			flags[last] = m[1]
		}
	}
	if _, ok := flags["nats-url"]; !ok || flags["nats-url"] == "" {
		t.Fatalf("callcontrol %s -h: no --nats-url with a default among %d flags parsed from:\n%s", role, len(flags), stderr.String())
	}
	roleFlagsCache[role] = flags
	return flags
}

// envFlag is the flag an environment variable CALLCONTROL_<FLAG> sets, as
// cmd/callcontrol/flags.go maps it, and false for any other variable.
func envFlag(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "CALLCONTROL_")
	if !ok {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", "-")), true
}

func TestEnvFlag(t *testing.T) {
	for in, want := range map[string]string{
		"CALLCONTROL_NATS_URL":           "nats-url",
		"CALLCONTROL_NATS_PASSWORD_FILE": "nats-password-file",
		"CALLCONTROL_REPLICAS":           "replicas",
		"GOMEMLIMIT":                     "",
	} {
		got, ok := envFlag(in)
		if got != want || ok != (want != "") {
			t.Errorf("envFlag(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
