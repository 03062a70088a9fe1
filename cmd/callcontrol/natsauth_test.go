package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
)

// wrongCredential is a connection attempt that must fail.
type wrongCredential struct {
	args []string
	want string // in the error
}

// Every role that connects to NATS does its work with each authentication
// mode (user and password file, token from the environment, NKey seed,
// .creds of an operator/account JWT setup, mutual TLS with a test CA and a
// server name): the worker and the poller provision and run, signin,
// register and signout change sessions, `disconnect --wait` is accepted
// and confirmed, and watch prints it. A wrong credential fails at once with
// an error naming the method, and no secret reaches a log line or error.
func TestNATSAuthModes(t *testing.T) {
	pki := newTestPKI(t)
	jwtConf, creds, foreignCreds := operatorSetup(t)
	nkPub, nkSeed := nkeyUser(t, "callcontrol")
	_, strangerSeed := nkeyUser(t, "stranger")
	const password, token = "pw-S3cret-4711", "tok-S3cret-0815"
	pwFile := writeFile(t, t.TempDir(), "password", []byte(password+"\n"))
	cases := []struct {
		name      string
		configure func(*server.Options)
		env       map[string]string
		flags     []string
		wrong     []wrongCredential
		secrets   []string // must appear in no log line and no error
	}{
		{
			name:      "user and password file",
			configure: func(o *server.Options) { o.Users = []*server.User{{Username: "cc", Password: password}} },
			flags:     []string{"--nats-user", "cc", "--nats-password-file", pwFile},
			wrong: []wrongCredential{
				{[]string{"--nats-user", "cc", "--nats-password", "wrong-pw-1234"}, "Authorization Violation"},
				{[]string{"--nats-user", "someone"}, "--nats-password-file (CALLCONTROL_NATS_PASSWORD_FILE): a NATS user needs a password"},
			},
			secrets: []string{password, "wrong-pw-1234"},
		},
		{
			name:      "token from the environment",
			configure: func(o *server.Options) { o.Authorization = token },
			env:       map[string]string{"CALLCONTROL_NATS_TOKEN": token},
			wrong:     []wrongCredential{{[]string{"--nats-token", "wrong-token-5678"}, "Authorization Violation"}},
			secrets:   []string{token, "wrong-token-5678"},
		},
		{
			name:      "nkey",
			configure: func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: nkPub}} },
			flags:     []string{"--nats-nkey", nkSeed},
			wrong:     []wrongCredential{{[]string{"--nats-nkey", strangerSeed}, "Authorization Violation"}},
			secrets:   []string{fileText(t, nkSeed), fileText(t, strangerSeed)},
		},
		{
			name:      "creds",
			configure: jwtConf,
			flags:     []string{"--nats-creds", creds},
			wrong:     []wrongCredential{{[]string{"--nats-creds", foreignCreds}, "Authorization Violation"}},
			secrets:   append(seedLines(t, creds), seedLines(t, foreignCreds)...),
		},
		{
			name:      "mutual TLS",
			configure: pki.mutualTLS(t),
			flags:     []string{"--nats-ca", pki.ca, "--nats-cert", pki.clientCert, "--nats-key", pki.clientKey, "--nats-tls-server-name", "nats.test"},
			wrong: []wrongCredential{
				{[]string{"--nats-ca", pki.ca, "--nats-tls-server-name", "nats.test"}, "set --nats-cert (CALLCONTROL_NATS_CERT) and --nats-key (CALLCONTROL_NATS_KEY)"},
				{[]string{"--nats-ca", pki.ca, "--nats-cert", pki.clientCert, "--nats-key", pki.clientKey}, "set --nats-tls-server-name (CALLCONTROL_NATS_TLS_SERVER_NAME)"},
				{[]string{"--nats-cert", pki.clientCert, "--nats-key", pki.clientKey, "--nats-tls-server-name", "nats.test"}, "certificate signed by unknown authority (set --nats-ca"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			url := startAuthNATS(t, c.configure)
			logs := exerciseRoles(t, url, c.flags)
			for _, w := range c.wrong {
				err := run(context.Background(), append([]string{"disconnect", "--nats-url", url, "--agent", "101", "--number", "5550101"}, w.args...), io.Discard)
				if err == nil || !strings.Contains(err.Error(), w.want) {
					t.Errorf("disconnect %q: error = %v, want it to contain %q", w.args, err, w.want)
					continue
				}
				if !strings.Contains(err.Error(), "--nats-") {
					t.Errorf("disconnect %q: error %q does not name the setting", w.args, err)
				}
				for _, s := range c.secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("disconnect %q: error shows a secret: %v", w.args, err)
					}
				}
			}
			for _, s := range c.secrets {
				if strings.Contains(logs.String(), s) {
					t.Errorf("a secret is in the logs:\n%s", logs.String())
				}
			}
		})
	}
}

// exerciseRoles runs every NATS role against url with the authentication
// flags auth and checks that each did its work. It returns the logs.
func exerciseRoles(t *testing.T, url string, auth []string) *testenv.SyncBuffer {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	stderr = logs
	t.Cleanup(func() { stderr = os.Stderr })
	sim, gwURL, ca := testGateway(t, gatewaysim.Config{AuthMode: 2, GUIDInterval: time.Second, PollHold: 300 * time.Millisecond})
	gw := []string{"--gateway-url", gwURL, "--gateway-ca", ca}
	as := func(cmd string, args ...string) []string {
		return append(append([]string{cmd, "--nats-url", url}, auth...), args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(args []string, out io.Writer) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx, args, out); err != nil {
				t.Errorf("%s: %v\nlogs: %s", args[0], err, logs.String())
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	start(as("worker", append([]string{"--confirm-within", "10s"}, gw...)...), io.Discard)
	start(as("poller", append([]string{"--poll-lease-ttl", "3s", "--gateway-poll-timeout", "2s", "--poll-gap", "50ms"}, gw...)...), io.Discard)

	// The test's own connection goes through the same flags.
	s := newSettings("test", io.Discard)
	var nf natsFlags
	nf.register(s, url)
	if err := s.parse(auth); err != nil {
		t.Fatal(err)
	}
	nc, js, err := nf.connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	testenv.WaitFor(t, 30*time.Second, "the worker and the poller to provision", func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, e1 := js.Consumer(c, events.StreamCommands, events.ConsumerWorkers)
		_, e2 := js.KeyValue(c, events.BucketPollers)
		return e1 == nil && e2 == nil
	})

	mustRun := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("%s: %v\noutput: %s\nlogs: %s", args[0], err, out.String(), logs.String())
		}
		return out.String()
	}
	mustRun(as("signin", append([]string{"--agent", "101"}, gw...)...)...)
	if _, err := sim.StartCall(101, "5550101"); err != nil {
		t.Fatal(err)
	}
	var watched testenv.SyncBuffer
	start(as("watch", "--all"), &watched)
	out := mustRun(as("disconnect", "--agent", "101", "--number", "5550101", "--wait", "--timeout", "30s")...)
	if !regexp.MustCompile(`(?m)^accepted .*\n(?s:.*)^confirmed `).MatchString(out) {
		t.Fatalf("disconnect: want accepted and confirmed, got:\n%s", out)
	}
	testenv.WaitFor(t, 10*time.Second, "watch to print the confirmation", func() bool {
		return regexp.MustCompile(`(?m)accepted .*agent=101(?s:.*)confirmed .*agent=101`).MatchString(watched.String())
	})
	if out := mustRun(as("register", "--agent", "102", "--guid", "guid-102.AgentGateway1")...); !strings.Contains(out, "agent 102 registered") {
		t.Fatalf("register: %s", out)
	}
	if !strings.Contains(logs.String(), `"setting":"--guid"`) {
		t.Fatalf("register --guid on the command line logged no WARN:\n%s", logs.String())
	}
	// 102's GUID is made up: the poller may have marked it invalid already,
	// and signout then says the agent was not signed in. Either way it
	// removed the session, which is what this role may do.
	var soOut bytes.Buffer
	if err := run(ctx, as("signout", "--agent", "102"), &soOut); !strings.Contains(soOut.String(), "agent 102 removed from the registry") &&
		(err == nil || !strings.Contains(err.Error(), "agent 102 was not signed in") || !strings.Contains(err.Error(), "removed from the registry")) {
		t.Fatalf("signout: %v; output: %s", err, soOut.String())
	}
	return logs
}

// fileText returns the trimmed content of a file.
func fileText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// seedLines returns the NKey seed line of a .creds file.
func seedLines(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(fileText(t, name), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "SU") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no seed", name)
	}
	return out
}
