//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mobynet "github.com/moby/moby/api/types/network"
	dockerclient "github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/callcontrol/callcontrol/worker"
)

// Timing of the deployment under test: short, so faults resolve quickly.
const (
	ackWait      = 5 * time.Second
	leaseTTL     = 4 * time.Second
	pollLeaseTTL = 10 * time.Second
)

// cluster is one deployment on a private network: three clustered NATS
// nodes (n1..n3), the gateway simulator (sim), workers and pollers, and
// the test's own NATS connection through the mapped ports.
type cluster struct {
	t        *testing.T
	nw       *testcontainers.DockerNetwork
	docker   dockerclient.APIClient
	nats     [3]*testcontainers.DockerContainer
	sim      *testcontainers.DockerContainer
	simURL   string // admin API through the mapped port
	workers  []*testcontainers.DockerContainer
	pollers  []*testcontainers.DockerContainer
	nc       *nats.Conn
	js       jetstream.JetStream
	sessions jetstream.KeyValue
	col      *collector
}

type clusterOpts struct {
	simArgs []string // extra gatewaysim flags
	workers int
	pollers int
}

const natsURLs = "nats://n1:4222,nats://n2:4222,nats://n3:4222"

// newCluster starts everything and provisions the streams and buckets.
func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	testcontainers.SkipIfProviderIsNotHealthy(t)
	if imagesErr != nil {
		t.Fatalf("images: %v", imagesErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prov, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	c := &cluster{t: t, docker: prov.Client()}
	c.nw, err = network.New(ctx, network.WithLabels(e2eLabels))
	testcontainers.CleanupNetwork(t, c.nw)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("n%d", i+1)
			c.nats[i], errs[i] = c.run(ctx, natsImage, name, []string{"4222/tcp"},
				wait.ForLog("Server is ready").WithStartupTimeout(60*time.Second),
				"-js", "-sd", "/data", "-n", name, "--cluster_name", "c",
				"--cluster", "nats://0.0.0.0:6222", "--routes", "nats://n1:6222,nats://n2:6222,nats://n3:6222")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("nats: %v", err)
		}
	}
	c.connect(ctx)

	simArgs := append([]string{"gatewaysim", "--gateway-listen", "0.0.0.0:8043", "--gateway-plain-http",
		"--sim-poll-hold", "2s", "--sim-authmode", "1"}, o.simArgs...)
	c.sim, err = c.run(ctx, appImage, "sim", []string{"8043/tcp"},
		wait.ForHTTP("/simulator/stats").WithPort("8043/tcp").WithStartupTimeout(30*time.Second), simArgs...)
	if err != nil {
		t.Fatalf("sim: %v", err)
	}
	ep, err := c.sim.PortEndpoint(ctx, "8043/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	c.simURL = ep

	for i := range o.workers {
		c.startWorker(ctx, i+1)
	}
	for i := range o.pollers {
		c.startPoller(ctx, i+1)
	}
	return c
}

// run starts one container of image on the network under alias.
func (c *cluster) run(ctx context.Context, image, alias string, ports []string, ws wait.Strategy, cmd ...string) (*testcontainers.DockerContainer, error) {
	ctr, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{alias}, c.nw),
		testcontainers.WithLabels(e2eLabels),
		testcontainers.WithExposedPorts(ports...),
		testcontainers.WithCmd(cmd...),
		testcontainers.WithWaitStrategy(ws),
	)
	testcontainers.CleanupContainer(c.t, ctr)
	return ctr, err
}

// startWorker starts worker i; extra flags follow the defaults (a flag
// given again overrides its default).
func (c *cluster) startWorker(ctx context.Context, i int, extra ...string) {
	alias := fmt.Sprintf("worker%d", i)
	args := append([]string{"worker", "--nats-url", natsURLs, "--replicas", "3", "--gateway-url", "http://sim:8043",
		"--ack-wait", ackWait.String(), "--lease-ttl", leaseTTL.String(), "--shutdown-timeout", "20s",
		"--log-level", "warn"}, extra...)
	w, err := c.run(ctx, appImage, alias, []string{"8080/tcp"}, readyz(), args...)
	if err != nil {
		c.t.Fatalf("%s: %v", alias, err)
	}
	c.workers = append(c.workers, w)
}

func (c *cluster) startPoller(ctx context.Context, i int) {
	alias := fmt.Sprintf("poller%d", i)
	p, err := c.run(ctx, appImage, alias, []string{"8080/tcp"}, readyz(),
		"poller", "--nats-url", natsURLs, "--replicas", "3", "--gateway-url", "http://sim:8043",
		"--poll-lease-ttl", pollLeaseTTL.String(), "--gateway-poll-timeout", "5s", "--log-level", "warn")
	if err != nil {
		c.t.Fatalf("%s: %v", alias, err)
	}
	c.pollers = append(c.pollers, p)
}

// readyz waits for the health endpoint of the image (CALLCONTROL_HEALTH_LISTEN=:8080).
func readyz() wait.Strategy {
	return wait.ForHTTP("/readyz").WithPort("8080/tcp").WithStartupTimeout(60 * time.Second)
}

// natsURL is the comma-separated client URLs of the three nodes through
// their current mapped ports (skipping a stopped node).
func (c *cluster) natsURL(ctx context.Context) string {
	var urls []string
	for _, n := range c.nats {
		if ep, err := n.PortEndpoint(ctx, "4222/tcp", "nats"); err == nil {
			urls = append(urls, ep)
		}
	}
	return strings.Join(urls, ",")
}

// connect connects the test to the cluster, waits for a JetStream meta
// leader and provisions the streams and buckets.
func (c *cluster) connect(ctx context.Context) {
	t := c.t
	nc, err := nats.Connect(c.natsURL(ctx), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.IgnoreDiscoveredServers(), nats.RetryOnFailedConnect(true), nats.Name("e2e"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// JetStream API calls made before the meta leader is elected are not
	// answered: retry with short attempts.
	retry(ctx, t, "provision", func(ctx context.Context) error {
		if _, err := c.js.AccountInfo(ctx); err != nil {
			return err
		}
		return topology.Provision(ctx, c.js, topology.Config{Replicas: 3, Pollers: topology.PollersConfig{LeaseTTL: pollLeaseTTL},
			Workers: worker.Config{AckWait: ackWait, LeaseTTL: leaseTTL}.Topology()}, topology.All)
	})
	retry(ctx, t, "sessions bucket", func(ctx context.Context) error {
		c.sessions, err = c.js.KeyValue(ctx, events.BucketSessions)
		return err
	})
	c.col = newCollector(t, c.js)
}

// retry runs fn with a 3 s budget per attempt until it succeeds or ctx ends.
func retry(ctx context.Context, t *testing.T, what string, fn func(context.Context) error) {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// --- the simulator's admin API ---

var httpc = &http.Client{Timeout: 10 * time.Second}

func (c *cluster) admin(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.simURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func customer(agent int) string { return fmt.Sprintf("555%05d", agent) }

// agents signs agents first..first+n-1 in at the simulator, puts each on a
// call with customer(agent) and registers its session.
func (c *cluster) agents(first, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.forAgents(first, n, func(id int) error { return c.agent(ctx, id) })
}

func (c *cluster) agent(ctx context.Context, id int) error {
	var in struct {
		GUID string `json:"guid"`
	}
	p := "/simulator/agents/" + strconv.Itoa(id)
	if err := c.admin("POST", p+"/signin", nil, &in); err != nil {
		return err
	}
	if err := c.admin("POST", p+"/calls", map[string]string{"customer": customer(id)}, nil); err != nil {
		return err
	}
	b, _ := json.Marshal(events.Session{GUID: in.GUID, AuthMode: 1, UpdatedAt: time.Now().UTC()})
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.sessions.Put(pctx, strconv.Itoa(id), b)
		cancel()
		if err == nil || attempt == 5 {
			return err
		}
	}
}

func (c *cluster) faults(rate float64) {
	f := gatewaysim.Faults{Rate: rate, Kinds: []gatewaysim.Fault{"5xx", "reset", "timeout"}, Seed: 1}
	if err := c.admin("PUT", "/simulator/faults", f, nil); err != nil {
		c.t.Fatal(err)
	}
}

type simStats struct {
	Requests           int64 `json:"requests"`
	Executed           int64 `json:"executed"`
	Overlaps           int64 `json:"overlaps"`
	ConcurrentPolls    int64 `json:"concurrent_polls"`
	SignedOutByTimeout int64 `json:"signed_out_by_timeout"`
	SignedIn           int   `json:"signed_in"`
	Polls              int64 `json:"polls"`
	Redials            int64 `json:"redials"`
	ExecutedOnRedial   int64 `json:"executed_on_redial"`
	CallInfoQueries    int64 `json:"callinfo_queries"`
}

func (c *cluster) stats() simStats {
	var s simStats
	if err := c.admin("GET", "/simulator/stats", nil, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *cluster) disconnects() []gatewaysim.Disconnect {
	var d []gatewaysim.Disconnect
	if err := c.admin("GET", "/simulator/disconnects", nil, &d); err != nil {
		c.t.Fatal(err)
	}
	return d
}

// --- commands ---

// command is one published command and the deadline it carries.
type command struct {
	events.DisconnectCommand
	expires time.Time
}

// commands makes one command per agent first..first+n-1, releasing the
// agent's customer; ttl(i) is the lifetime of the i-th.
func commands(prefix string, first, n int, ttl func(i int) time.Duration) []command {
	now := time.Now().UTC()
	out := make([]command, n)
	for i := range n {
		d := ttl(i)
		out[i] = command{DisconnectCommand: events.DisconnectCommand{
			CommandID: fmt.Sprintf("%s-%05d", prefix, i), AgentID: first + i, Number: customer(first + i),
			IssuedAt: now, ExpiresAt: now.Add(d), CorrelationID: "e2e-" + prefix, RequestedBy: "e2e",
		}, expires: now.Add(d)}
	}
	return out
}

// publish stores the commands in CALLCONTROL_COMMANDS with Nats-Msg-Id =
// command_id, retrying each until JetStream acknowledges it (a retry is
// de-duplicated). pace spreads them: at most perSecond (0 = as fast as
// possible).
func (c *cluster) publish(ctx context.Context, cmds []command, perSecond int) {
	t := c.t
	const window = 256
	var tick *time.Ticker
	if perSecond > 0 {
		tick = time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
	}
	for start := 0; start < len(cmds); start += window {
		batch := cmds[start:min(start+window, len(cmds))]
		pending := batch
		for attempt := 0; len(pending) > 0; attempt++ {
			if ctx.Err() != nil {
				t.Errorf("publish: %v", ctx.Err())
				return
			}
			var failed []command
			futs := make([]jetstream.PubAckFuture, 0, len(pending))
			for _, cmd := range pending {
				if tick != nil && attempt == 0 {
					<-tick.C
				}
				b, _ := json.Marshal(cmd.DisconnectCommand)
				f, err := c.js.PublishAsync(events.SubjectDisconnect, b, jetstream.WithMsgID(cmd.CommandID))
				if err != nil {
					failed = append(failed, cmd)
					futs = append(futs, nil)
					continue
				}
				futs = append(futs, f)
			}
			for i, f := range futs {
				if f == nil {
					continue
				}
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, pending[i])
				case <-time.After(10 * time.Second):
					failed = append(failed, pending[i])
				}
			}
			pending = failed
			if len(pending) > 0 {
				time.Sleep(250 * time.Millisecond)
			}
		}
	}
}

// --- the test's view of results and confirmations ---

// collector follows CALLCONTROL_RESULTS and the confirmations with
// ordered consumers (which survive node failures) and groups what is
// stored by the Callcontrol-Command-Id header.
type collector struct {
	mu      sync.Mutex
	results map[string][]events.Result
	confs   map[string][]events.Confirmation
	arrived []time.Time // when each result arrived here
	ctxs    []jetstream.ConsumeContext
}

func newCollector(t *testing.T, js jetstream.JetStream) *collector {
	col := &collector{results: map[string][]events.Result{}, confs: map[string][]events.Confirmation{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	follow := func(stream, filter string, fn func(id string, data []byte)) {
		var cc jetstream.ConsumeContext
		retry(ctx, t, "follow "+stream, func(ctx context.Context) error {
			cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
			if err != nil {
				return err
			}
			cc, err = cons.Consume(func(m jetstream.Msg) {
				fn(m.Headers().Get(events.HeaderCommandID), m.Data())
			})
			return err
		})
		col.ctxs = append(col.ctxs, cc)
	}
	follow(events.StreamResults, events.SubjectResults+".>", func(id string, data []byte) {
		var r events.Result
		_ = json.Unmarshal(data, &r)
		col.mu.Lock()
		col.results[id] = append(col.results[id], r)
		col.arrived = append(col.arrived, time.Now())
		col.mu.Unlock()
	})
	follow(events.StreamEvents, events.SubjectConfirmations+".>", func(id string, data []byte) {
		var cf events.Confirmation
		_ = json.Unmarshal(data, &cf)
		col.mu.Lock()
		col.confs[id] = append(col.confs[id], cf)
		col.mu.Unlock()
	})
	t.Cleanup(func() {
		for _, cc := range col.ctxs {
			cc.Stop()
		}
	})
	return col
}

// done is how many of cmds have at least one result.
func (col *collector) done(cmds []command) int {
	col.mu.Lock()
	defer col.mu.Unlock()
	n := 0
	for _, c := range cmds {
		if len(col.results[c.CommandID]) > 0 {
			n++
		}
	}
	return n
}

func (col *collector) confirmed(cmds []command) int {
	col.mu.Lock()
	defer col.mu.Unlock()
	n := 0
	for _, c := range cmds {
		if len(col.confs[c.CommandID]) > 0 {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or d passes; it reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return cond()
}

// waitDone waits until every command has a result (or d passes).
func (c *cluster) waitDone(cmds []command, d time.Duration) {
	waitFor(d, func() bool { return c.col.done(cmds) == len(cmds) })
}

// waitProgress waits until at least n commands have results.
func (c *cluster) waitProgress(cmds []command, n int, d time.Duration) {
	if !waitFor(d, func() bool { return c.col.done(cmds) >= n }) {
		c.t.Fatalf("only %d of %d results after %v", c.col.done(cmds), n, d)
	}
}

// --- faults ---

func (c *cluster) kill(ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.ContainerKill(ctx, ctr.GetContainerID(), dockerclient.ContainerKillOptions{Signal: "KILL"}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) pause(ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.ContainerPause(ctx, ctr.GetContainerID(), dockerclient.ContainerPauseOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) unpause(ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.ContainerUnpause(ctx, ctr.GetContainerID(), dockerclient.ContainerUnpauseOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) disconnectNet(ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.NetworkDisconnect(ctx, c.nw.ID, dockerclient.NetworkDisconnectOptions{Container: ctr.GetContainerID(), Force: true}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) connectNet(ctr *testcontainers.DockerContainer, alias string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.docker.NetworkConnect(ctx, c.nw.ID, dockerclient.NetworkConnectOptions{
		Container: ctr.GetContainerID(), EndpointConfig: &mobynet.EndpointSettings{Aliases: []string{alias}},
	}); err != nil {
		c.t.Fatal(err)
	}
}

// restart stops ctr with SIGTERM (SIGKILL after grace) and starts it again,
// which re-runs its wait strategy.
func (c *cluster) restart(ctr *testcontainers.DockerContainer, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stopping := time.Now()
	if err := ctr.Stop(ctx, &grace); err != nil {
		c.t.Fatal(err)
	}
	// A graceful stop finishes in-flight commands and exits 0 well
	// before the grace period would turn SIGTERM into SIGKILL.
	st, err := ctr.State(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	if st.ExitCode != 0 || time.Since(stopping) >= grace {
		c.t.Errorf("stop after SIGTERM: exit code %d after %v (grace %v)\n%s", st.ExitCode, time.Since(stopping), grace, logs(ctr))
	} else {
		c.t.Logf("stopped gracefully (SIGTERM) in %v", time.Since(stopping).Round(time.Millisecond))
	}
	if err := ctr.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// logs returns the tail of ctr's log, for failure messages.
func logs(ctr *testcontainers.DockerContainer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
