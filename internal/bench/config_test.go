package bench

import (
	"errors"
	"testing"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func validConfig() Config {
	return Config{Sizes: QuickSizes(), Executable: "callcontrol",
		StartNATS:    func(string, string) (*natsembed.Server, error) { return nil, errors.New("unused") },
		Connect:      func(string) (*nats.Conn, jetstream.JetStream, error) { return nil, nil, errors.New("unused") },
		StartGateway: func(gatewaysim.Config) (*Gateway, error) { return nil, errors.New("unused") }}
}

// Run refuses a Config it cannot run, naming the field, before it starts
// anything.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Config)
		is    error
	}{
		{"Executable", func(c *Config) { c.Executable = "" }, nil},
		{"StartNATS", func(c *Config) { c.StartNATS = nil }, nil},
		{"Connect", func(c *Config) { c.Connect = nil }, nil},
		{"StartGateway", func(c *Config) { c.StartGateway = nil }, nil},
		{"Scenarios", func(c *Config) { c.Scenarios = []string{"ceiling", "nope"} }, ErrUnknownScenario},
		{"Sizes", func(c *Config) { c.Sizes.PollAgents = -1 }, nil},
		{"Sizes.CeilingN", func(c *Config) { c.Sizes.CeilingN = c.Sizes.MaxCeilingCommands() + 1 }, nil},
	} {
		cfg := validConfig()
		tc.edit(&cfg)
		rep, err := Run(t.Context(), cfg)
		var inv *InvalidConfigError
		if rep != nil || !errors.As(err, &inv) || inv.Field != tc.field || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: Run = %v, %v; want no report and an InvalidConfigError for the field", tc.field, rep, err)
		}
	}
	if err := validConfig().Validate(); err != nil {
		t.Errorf("Validate of a valid Config = %v", err)
	}
}

// A scenario that fails is recorded and the report still comes back,
// with a FailedError naming it.
func TestRunFailedScenario(t *testing.T) {
	cfg := validConfig()
	cfg.Scenarios = []string{"confirmation"}
	rep, err := Run(t.Context(), cfg)
	var failed *FailedError
	if !errors.As(err, &failed) || rep == nil || len(rep.Failures) != 1 || len(failed.Failures) != 1 || rep.Confirm != nil {
		t.Fatalf("Run = %+v, %v; want the report with one failure", rep, err)
	}
	if want := "bench: 1 scenario(s) failed: confirmation: unused"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
