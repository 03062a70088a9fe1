//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The images the fault suite runs; built once per run by TestMain from
// static binaries, FROM scratch, with the classic builder (no registry).
const (
	appImage  = "callcontrol-e2e:test"
	natsImage = "callcontrol-e2e-nats:test"
)

// e2eLabel marks every container and network the suite creates, on top of
// testcontainers' own org.testcontainers labels, so `make e2e` can remove
// leftovers of a crashed run.
var e2eLabels = map[string]string{"com.callcontrol.e2e": "true"}

// imagesErr is why the images could not be built; the fault tests fail
// with it (they skip only when there is no Docker engine at all).
var imagesErr error

func TestMain(m *testing.M) {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") != "true" {
		fmt.Fprintln(os.Stderr, "e2e: TESTCONTAINERS_RYUK_DISABLED must be exactly \"true\": no registry is reachable, so the Ryuk reaper image cannot be pulled (run `make e2e`)")
		os.Exit(2)
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		// Mapped ports must be reached on loopback only.
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
	if exec.Command("docker", "info").Run() == nil {
		imagesErr = buildImages()
		if imagesErr != nil {
			fmt.Fprintln(os.Stderr, "e2e: building images:", imagesErr)
		}
	}
	code := m.Run()
	writeReport()
	os.Exit(code)
}

// buildImages builds the static callcontrol and nats-server binaries and
// the two FROM-scratch images appImage and natsImage.
func buildImages() error {
	tmp, err := os.MkdirTemp("", "callcontrol-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	app, nats := filepath.Join(tmp, "app"), filepath.Join(tmp, "nats")
	for _, d := range []string{app, nats} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	gobuild := func(out, pkg string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
		}
		return nil
	}
	if err := gobuild(filepath.Join(app, "callcontrol"), "./cmd/callcontrol"); err != nil {
		return err
	}
	if err := gobuild(filepath.Join(nats, "nats-server"), "github.com/nats-io/nats-server/v2"); err != nil {
		return err
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		filepath.Join(app, "ca-certificates.crt"): ca,
		filepath.Join(app, "Dockerfile"):          dockerfile("../deployments/Dockerfile", appDockerfile),
		filepath.Join(nats, "Dockerfile"):         []byte(natsDockerfile),
	}
	for name, b := range files {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
	}
	for tag, dir := range map[string]string{appImage: app, natsImage: nats} {
		cmd := exec.Command("docker", "build", "-q", "--label", "com.callcontrol.e2e=true", "-t", tag, dir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker build %s: %v: %s", tag, err, b)
		}
	}
	return nil
}

// dockerfile returns the project's Dockerfile at path, or fallback when
// it does not exist.
func dockerfile(path, fallback string) []byte {
	if b, err := os.ReadFile(path); err == nil {
		return b
	}
	return []byte(fallback)
}

// The image contract of deployments/Dockerfile. The NATS image is the
// scratch image of deployments/nats without its config file: the suite
// configures the cluster with flags.
const (
	appDockerfile = `FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY callcontrol /callcontrol
USER 65532:65532
ENV CALLCONTROL_HEALTH_LISTEN=:8080
EXPOSE 8080
ENTRYPOINT ["/callcontrol"]
`
	natsDockerfile = `FROM scratch
COPY nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
`
)
