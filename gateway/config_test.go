package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	valid := Config{BaseURL: "https://10.1.1.1:8043"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid http with prefix", func(c *Config) { c.BaseURL = "http://nslb.local/gw/" }, ""},
		{"valid all set", func(c *Config) {
			*c = Config{BaseURL: "https://gw:8043", RequestTimeout: time.Second, PollTimeout: time.Minute, MaxConns: 8,
				CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", MaxBodyBytes: 1}
		}, ""},
		{"BaseURL empty", func(c *Config) { c.BaseURL = "" }, "gateway: BaseURL: required"},
		{"BaseURL ftp", func(c *Config) { c.BaseURL = "ftp://10.1.1.1" }, "gateway: BaseURL: must be an http or https URL"},
		{"BaseURL no scheme", func(c *Config) { c.BaseURL = "10.1.1.1:8043" }, "gateway: BaseURL: must be an http or https URL"},
		{"BaseURL no host", func(c *Config) { c.BaseURL = "https://" }, "gateway: BaseURL: must be an http or https URL"},
		{"BaseURL opaque", func(c *Config) { c.BaseURL = "https:10.1.1.1" }, "gateway: BaseURL: must be an http or https URL"},
		{"BaseURL unparsable", func(c *Config) { c.BaseURL = "https://[::1" }, "gateway: BaseURL: must be an http or https URL"},
		{"BaseURL user info", func(c *Config) { c.BaseURL = "https://u:p@10.1.1.1" }, "gateway: BaseURL: must not contain user info"},
		{"BaseURL query", func(c *Config) { c.BaseURL = "https://10.1.1.1/?a=1" }, "gateway: BaseURL: must not have a query or fragment"},
		{"BaseURL fragment", func(c *Config) { c.BaseURL = "https://10.1.1.1/#x" }, "gateway: BaseURL: must not have a query or fragment"},
		{"RequestTimeout", func(c *Config) { c.RequestTimeout = -time.Second }, "gateway: RequestTimeout: must not be negative"},
		{"PollTimeout", func(c *Config) { c.PollTimeout = -1 }, "gateway: PollTimeout: must not be negative"},
		{"MaxConns", func(c *Config) { c.MaxConns = -1 }, "gateway: MaxConns: must not be negative"},
		{"MaxBodyBytes", func(c *Config) { c.MaxBodyBytes = -1 }, "gateway: MaxBodyBytes: must not be negative"},
		{"CertFile without KeyFile", func(c *Config) { c.CertFile = "c.pem" }, "gateway: KeyFile: required when CertFile is set"},
		{"KeyFile without CertFile", func(c *Config) { c.KeyFile = "k.pem" }, "gateway: CertFile: required when KeyFile is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			if tt.want == "" {
				return
			}
			if _, nerr := New(c); nerr == nil || nerr.Error() != tt.want {
				t.Fatalf("New: %v, want %q", nerr, tt.want)
			}
		})
	}
}

func TestConfig_ValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := Config{MaxConns: -1, PollTimeout: -1}.Validate()
	for _, field := range []string{" BaseURL:", " MaxConns:", " PollTimeout:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate: %v, want it to name%s", err, field)
		}
	}
}

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	c := Config{BaseURL: "https://gw"}.withDefaults()
	if c.RequestTimeout != 5*time.Second || c.PollTimeout != 20*time.Second || c.MaxConns != 64 || c.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults %+v", c)
	}
	cl, err := New(Config{BaseURL: "https://gw:8043/", MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tc := cl.tr.TLSClientConfig
	if tc.MinVersion != 0x0303 || tc.InsecureSkipVerify || tc.RootCAs != nil {
		t.Errorf("TLS config: min %x insecure %v roots %v", tc.MinVersion, tc.InsecureSkipVerify, tc.RootCAs)
	}
	if cl.tr.MaxConnsPerHost != 3 || cl.tr.MaxIdleConnsPerHost != 3 {
		t.Errorf("pool: MaxConnsPerHost %d MaxIdleConnsPerHost %d, want 3", cl.tr.MaxConnsPerHost, cl.tr.MaxIdleConnsPerHost)
	}
	if cl.base != "https://gw:8043/agentgateway/resource/" {
		t.Errorf("base %q", cl.base)
	}
}

// TestNew_FileErrors checks that unreadable TLS files fail New with the
// field's name.
func TestNew_FileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"CAFile missing", Config{CAFile: missing}, "gateway: CAFile: "},
		{"CAFile not PEM", Config{CAFile: notPEM}, "gateway: CAFile: no PEM certificate found"},
		{"CertFile missing", Config{CertFile: missing, KeyFile: missing}, "gateway: CertFile: "},
		{"CertFile not PEM", Config{CertFile: notPEM, KeyFile: notPEM}, "gateway: CertFile: "},
	}
	for _, tt := range tests {
		tt.cfg.BaseURL = "https://gw"
		if _, err := New(tt.cfg); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: New: %v, want prefix %q", tt.name, err, tt.want)
		}
	}
}
