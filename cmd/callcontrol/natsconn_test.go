package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/worker"
)

// Conflicting or incomplete NATS settings are refused before any dialing,
// by every command that connects, with an error naming both settings and
// the rule; a bad file is named by its flag without quoting its content.
func TestNATSSettingsConflicts(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage", []byte("not-a-key-SECRETISH-0042\n"))
	const unreachable = "nats://127.0.0.1:1"
	cases := []struct {
		flags []string
		env   map[string]string
		want  string
	}{
		{[]string{"--nats-token", "t", "--nats-creds", garbage}, nil,
			"--nats-token (CALLCONTROL_NATS_TOKEN) and --nats-creds (CALLCONTROL_NATS_CREDS): use one NATS authentication method"},
		{[]string{"--nats-nkey", garbage, "--nats-creds", garbage}, nil, "--nats-nkey (CALLCONTROL_NATS_NKEY) and --nats-creds (CALLCONTROL_NATS_CREDS): use one"},
		{[]string{"--nats-user", "u", "--nats-password-file", garbage, "--nats-token-file", garbage}, nil,
			"--nats-user (CALLCONTROL_NATS_USER) and --nats-token-file (CALLCONTROL_NATS_TOKEN_FILE): use one"},
		{[]string{"--nats-url", "nats://u:p@127.0.0.1:1", "--nats-nkey", garbage}, nil, "--nats-url (CALLCONTROL_NATS_URL) and --nats-nkey (CALLCONTROL_NATS_NKEY): use one"},
		{[]string{"--nats-cert", garbage}, nil, "--nats-cert (CALLCONTROL_NATS_CERT) and --nats-key (CALLCONTROL_NATS_KEY): a client certificate and its key go together"},
		{[]string{"--nats-key", garbage}, nil, "--nats-cert (CALLCONTROL_NATS_CERT) and --nats-key (CALLCONTROL_NATS_KEY): a client certificate and its key go together"},
		{[]string{"--nats-user", "u", "--nats-password-file", garbage}, map[string]string{"CALLCONTROL_NATS_PASSWORD": "pw"},
			"--nats-password (CALLCONTROL_NATS_PASSWORD) and --nats-password-file (CALLCONTROL_NATS_PASSWORD_FILE): give the password once"},
		{[]string{"--nats-token-file", garbage}, map[string]string{"CALLCONTROL_NATS_TOKEN": "t"},
			"--nats-token (CALLCONTROL_NATS_TOKEN) and --nats-token-file (CALLCONTROL_NATS_TOKEN_FILE): give the token once"},
		{nil, map[string]string{"CALLCONTROL_NATS_PASSWORD": "pw"}, "--nats-password (CALLCONTROL_NATS_PASSWORD) and --nats-user (CALLCONTROL_NATS_USER): a NATS password needs a user"},
		{[]string{"--nats-user", "u"}, nil, "--nats-user (CALLCONTROL_NATS_USER) and --nats-password-file (CALLCONTROL_NATS_PASSWORD_FILE): a NATS user needs a password"},
		{[]string{"--nats-creds", garbage}, nil, "--nats-creds (CALLCONTROL_NATS_CREDS): no valid user JWT found"},
		{[]string{"--nats-nkey", garbage}, nil, "--nats-nkey (CALLCONTROL_NATS_NKEY): not a readable NKey user seed file"},
		{[]string{"--nats-ca", dir + "/missing.pem"}, nil, "--nats-ca (CALLCONTROL_NATS_CA): nats: error loading or parsing rootCA file"},
		{[]string{"--nats-ca", garbage}, nil, "--nats-ca (CALLCONTROL_NATS_CA): nats: failed to parse root certificate"},
		{[]string{"--nats-cert", garbage, "--nats-key", garbage}, nil, "--nats-cert (CALLCONTROL_NATS_CERT): nats: error loading client certificate"},
		{[]string{"--nats-user", "u", "--nats-password-file", dir + "/missing"}, nil, "--nats-password-file (CALLCONTROL_NATS_PASSWORD_FILE): open "},
	}
	commands := [][]string{
		{"worker", "--gateway-url", "https://gw:8043"},
		{"poller", "--gateway-url", "https://gw:8043"},
		{"disconnect", "--agent", "101", "--number", "5550101"},
		{"watch"},
		{"signin", "--agent", "101", "--gateway-url", "https://gw:8043"},
		{"register", "--agent", "101", "--guid", "g"},
		{"signout", "--agent", "101"},
	}
	stderr = io.Discard
	t.Cleanup(func() { stderr = os.Stderr })
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			for _, cmd := range commands {
				args := append(append(append([]string{}, cmd...), "--nats-url", unreachable), c.flags...)
				if c.flags != nil && c.flags[0] == "--nats-url" {
					args = append(append([]string{}, cmd...), c.flags...)
				}
				err := run(context.Background(), args, io.Discard)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s: error = %v, want it to contain %q", cmd[0], err, c.want)
				}
				if strings.Contains(err.Error(), "SECRETISH") || strings.Contains(err.Error(), "connection refused") {
					t.Fatalf("%s: error quotes a file or was not caught before dialing: %v", cmd[0], err)
				}
			}
		})
	}
}

// Passwords and tokens, given as flags, variables, files or in the URL,
// appear in no error; on the command line they cause a WARN line that
// names the flag, not the value.
func TestNATSSecretsMasked(t *testing.T) {
	const secret = "S3cret-Value-9911"
	pwFile := writeFile(t, t.TempDir(), "pw", []byte(secret+"\n"))
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		warnFlag string // named by a WARN line, "" for none
	}{
		{"password flag", []string{"--nats-user", "u", "--nats-password", secret}, nil, "--nats-password"},
		{"password variable", []string{"--nats-user", "u"}, map[string]string{"CALLCONTROL_NATS_PASSWORD": secret}, ""},
		{"password file", []string{"--nats-user", "u", "--nats-password-file", pwFile}, nil, ""},
		{"token flag", []string{"--nats-token", secret}, nil, "--nats-token"},
		{"token file", []string{"--nats-token-file", pwFile}, nil, ""},
		{"password in URL flag", []string{"--nats-url", "nats://u:" + secret + "@127.0.0.1:1"}, nil, "--nats-url"},
		{"token in URL variable", nil, map[string]string{"CALLCONTROL_NATS_URL": "nats://" + secret + "@127.0.0.1:1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs testenv.SyncBuffer
			stderr = &logs
			t.Cleanup(func() { stderr = os.Stderr })
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := []string{"disconnect", "--agent", "101", "--number", "5550101"}
			if c.env["CALLCONTROL_NATS_URL"] == "" && (len(c.args) == 0 || c.args[0] != "--nats-url") {
				args = append(args, "--nats-url", "nats://127.0.0.1:1")
			}
			err := run(context.Background(), append(args, c.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), "connect to NATS") {
				t.Fatalf("error = %v, want a connection error", err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
				t.Fatalf("the secret shows:\nerror: %v\nlogs: %s", err, logs.String())
			}
			warned := regexp.MustCompile(`"level":"warn","setting":"` + regexp.QuoteMeta(c.warnFlag) + `"`).MatchString(logs.String())
			if c.warnFlag != "" && !warned {
				t.Fatalf("no WARN naming %s in:\n%s", c.warnFlag, logs.String())
			}
			if c.warnFlag == "" && strings.Contains(logs.String(), `"level":"warn"`) {
				t.Fatalf("unexpected WARN:\n%s", logs.String())
			}
		})
	}
	// explain and environment errors mask secret flags too.
	s := newSettings("test", io.Discard)
	var nf natsFlags
	nf.register(s, "")
	t.Setenv("CALLCONTROL_NATS_TOKEN", secret)
	if err := s.parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.explain(errors.New("gateway: BaseURL: " + secret)); strings.Contains(err.Error(), secret) {
		t.Fatalf("explain shows the secret: %v", err)
	}
	if got := natsconn.RedactURLs("nats://a:" + secret + "@h:4222, tls://" + secret + "@h2:4222"); strings.Contains(got, secret) ||
		got != "nats://a:***@h:4222,tls://***@h2:4222" {
		t.Fatalf("redactURLs = %q", got)
	}
}

// The gateway's certificate is verified unless --gateway-insecure-skip-verify
// is given, and then every role that talks to the gateway logs a WARN line
// naming the flag at start.
func TestGatewayInsecureSkipVerify(t *testing.T) {
	natsURL, _ := testJetStream(t, worker.Config{})
	sim, gwURL, _ := testGateway(t, gatewaysim.Config{}) // self-signed; its CA is not given
	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--nats-url", natsURL, "--gateway-url", gwURL, "--gateway-insecure-skip-verify"}, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	warn := regexp.MustCompile(`"level":"warn","setting":"--gateway-insecure-skip-verify".*NOT verified`)
	testenv.WaitFor(t, 10*time.Second, "the worker's WARN line", func() bool { return warn.MatchString(logs.String()) })

	// Verification is on by default: signin without the CA is refused.
	err := run(ctx, []string{"signin", "--agent", "101", "--nats-url", natsURL, "--gateway-url", gwURL}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("signin without --gateway-ca: error = %v, want a certificate error", err)
	}
	logs0 := strings.Count(logs.String(), "--gateway-insecure-skip-verify")
	if err := run(ctx, []string{"signin", "--agent", "101", "--nats-url", natsURL, "--gateway-url", gwURL, "--gateway-insecure-skip-verify"}, io.Discard); err != nil {
		t.Fatalf("signin --gateway-insecure-skip-verify: %v", err)
	}
	if strings.Count(logs.String(), "--gateway-insecure-skip-verify") <= logs0 {
		t.Fatalf("signin logged no WARN line:\n%s", logs.String())
	}
	if _, err := sim.StartCall(101, "5550101"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"disconnect", "--nats-url", natsURL, "--agent", "101", "--number", "5550101", "--wait", "--confirm=false", "--timeout", "20s"}, &out); err != nil {
		t.Fatalf("disconnect: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "accepted ") {
		t.Fatalf("want accepted through the unverified gateway, got:\n%s", out.String())
	}
}
