package poller

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"test timings", func(c *Config) { *c = testConfig() }, ""},
		{"instance with a dot", func(c *Config) { c.Instance = "host.pid" }, "Instance"},
		{"instance with a space", func(c *Config) { c.Instance = "a b" }, "Instance"},
		{"lease TTL too short", func(c *Config) { c.LeaseTTL = 500 * time.Millisecond }, "LeaseTTL"},
		{"poll outlives lease", func(c *Config) { c.LeaseTTL, c.PollTimeout = 20*time.Second, 20*time.Second }, "PollTimeout"},
		{"poll does not fit between renewals", func(c *Config) { c.LeaseTTL, c.PollTimeout = 30*time.Second, 23*time.Second }, "PollTimeout"},
		{"negative poll gap", func(c *Config) { c.PollGap = -time.Second }, "PollGap"},
		{"backoff inverted", func(c *Config) { c.InitialBackoff, c.MaxBackoff = 2*time.Second, time.Second }, "InitialBackoff"},
		{"unpolled too long", func(c *Config) {
			c.LeaseTTL, c.PollTimeout, c.MaxBackoff = 90*time.Second, 20*time.Second, 10*time.Second
		}, "MaxBackoff"},
		{"negative grace", func(c *Config) { c.ReleaseGrace = -time.Second }, "ReleaseGrace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), "poller: "+tt.field+":")):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	if c.LeaseTTL != 30*time.Second || c.PollTimeout != 20*time.Second || c.PollGap != 200*time.Millisecond ||
		c.InitialBackoff != 500*time.Millisecond || c.MaxBackoff != 10*time.Second || c.ReleaseGrace != 30*time.Second {
		t.Errorf("DefaultConfig() = %+v", c)
	}
	if c.Instance == "" || c.Validate() != nil {
		t.Errorf("default Instance %q: %v", c.Instance, c.Validate())
	}
}
