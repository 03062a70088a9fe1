package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"golang.org/x/sync/errgroup"
	xrate "golang.org/x/time/rate"
)

// What the HTTP door costs (README "HTTP API"): POST /v1/disconnects with
// Prefer: wait, from CeilingConc clients at once, against the NATS path a
// Go service takes for the same answer, admin.Client.Submit (publish, then
// wait for the result and the confirmation), from as many goroutines, in
// the same run and in front of the same worker and poller. The api.Server
// runs in this process on a loopback port over plain HTTP, as `callcontrol
// dev` serves it (production adds TLS, whose cost on a warm connection is
// the record encryption, left out here), on the bench's own NATS
// connection, which the NATS loop uses too: the difference is the HTTP
// request, its decoding, the token check and the response.
//
// The two paths run in four segments, NATS, API, API, NATS, each on
// agents of its own, so that a load drifting on the shared machine weighs
// on both alike.

// APIResult is the api scenario's measurement.
type APIResult struct {
	Commands    int     `json:"commands"` // per path
	Concurrency int     `json:"concurrency"`
	API         float64 `json:"api_cmd_per_s"`  // POST with Prefer: wait, answered 200
	NATS        float64 `json:"nats_cmd_per_s"` // admin.Client.Submit, result and confirmation
	Ratio       float64 `json:"ratio_nats"`
	Accepted    int     `json:"accepted"`  // results accepted, both paths
	Confirmed   int     `json:"confirmed"` // confirmations received, both paths
}

// apiMaxCommands bounds the commands of each path: every submission
// leaves an ordered consumer on the results stream (and one on the events
// stream) for 5 minutes after it closes (admin.Submission.Close stops it,
// the server deletes it when inactive), and a stream takes 1,000 consumers
// by default.
const apiMaxCommands = 400

// APICommands is how many commands each path of the api scenario runs
// with s: the ceiling's, at most apiMaxCommands, an even number.
func APICommands(s Sizes) int {
	n := min(s.CeilingN, apiMaxCommands)
	return n - n%2
}

// apiWait is the Prefer: wait of the scenario's requests, and the NATS
// loop's wait for each result and confirmation.
const apiWait = 30 * time.Second

// apiPath is one of the two ways a command is submitted and awaited; it
// returns whether the result was accepted and the confirmation came.
type apiPath func(ctx context.Context, cmd events.DisconnectCommand) (accepted, confirmed bool, err error)

func benchAPI(ctx context.Context, rn *runner) error {
	sz, prog := rn.cfg.Sizes, rn.prog
	n, conc := APICommands(sz), sz.CeilingConc
	env, err := newBenchEnv(ctx, rn.cfg, gatewaysim.Config{AuthMode: 2}, conc)
	if err != nil {
		return err
	}
	defer env.close()
	agents := agentRange(101, 2*n+conc)
	prog.set("api: signing agents in", 0, 0)
	if _, err := env.signIn(ctx, agents, true); err != nil {
		return err
	}
	if err := env.startAPIWorld(ctx, len(agents), conc); err != nil {
		return err
	}
	if err := env.allPolled(ctx, prog, "api: first polls", agents); err != nil {
		return err
	}
	door, err := startAPIDoor(env, conc)
	if err != nil {
		return err
	}
	defer door.close()
	natsPath, err := env.submitPath()
	if err != nil {
		return err
	}
	r, err := apiSegments(ctx, prog, natsPath, door.post, agents[:conc], agents[conc:], conc)
	if err != nil {
		return err
	}
	r.Commands, r.Concurrency, r.Ratio = n, conc, r.API/r.NATS
	rn.rep.API = r
	return nil
}

// startAPIWorld starts the poller (for the confirmations) and the worker.
func (e *benchEnv) startAPIWorld(ctx context.Context, agents, conc int) error {
	if _, err := e.start(ctx, "poller", "--gateway-max-conns", strconv.Itoa(agents+16)); err != nil {
		return err
	}
	_, err := e.start(ctx, "worker", "--concurrency", strconv.Itoa(conc))
	return err
}

// apiSegments warms both paths up on warm (one command each per slot,
// half on each), then runs the segments NATS, API, API, NATS on
// consecutive quarters of agents.
func apiSegments(ctx context.Context, prog *progress, natsPath, apiPathFn apiPath, warm, agents []int, conc int) (*APIResult, error) {
	half := len(warm) / 2
	if _, err := runPath(ctx, natsPath, "warm", warm[:half], conc); err != nil {
		return nil, fmt.Errorf("nats warm-up: %w", err)
	}
	if _, err := runPath(ctx, apiPathFn, "warm", warm[half:], conc); err != nil {
		return nil, fmt.Errorf("api warm-up: %w", err)
	}
	q := len(agents) / 4
	paths := []struct {
		name string
		p    apiPath
	}{{"NATS", natsPath}, {"API", apiPathFn}, {"API", apiPathFn}, {"NATS", natsPath}}
	r := &APIResult{}
	var elapsed [2]time.Duration
	for i, s := range paths {
		prog.set(fmt.Sprintf("api: %s segment %d of 4, %d in flight", s.name, i+1, conc), 0, 0)
		seg, err := runPath(ctx, s.p, "run", agents[i*q:(i+1)*q], conc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if s.name == "API" {
			elapsed[1] += seg.elapsed
		} else {
			elapsed[0] += seg.elapsed
		}
		r.Accepted += seg.accepted
		r.Confirmed += seg.confirmed
	}
	r.NATS, r.API = float64(2*q)/elapsed[0].Seconds(), float64(2*q)/elapsed[1].Seconds()
	return r, nil
}

// pathRun is what one segment measured.
type pathRun struct {
	elapsed             time.Duration
	accepted, confirmed int
}

// runPath submits one command per agent through p from conc goroutines
// and returns the time from the first submission to the last answer.
func runPath(ctx context.Context, p apiPath, tag string, agents []int, conc int) (pathRun, error) {
	var next, accepted, confirmed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range conc {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(agents); i = int(next.Add(1) - 1) {
				a := agents[i]
				cmd := events.DisconnectCommand{CommandID: CommandID(tag, a), AgentID: a, Number: Customer(a), TTL: time.Minute}
				acc, conf, err := p(gctx, cmd)
				if err != nil {
					return fmt.Errorf("agent %d: %w", a, err)
				}
				accepted.Add(int64(boolInt(acc)))
				confirmed.Add(int64(boolInt(conf)))
			}
			return nil
		})
	}
	err := g.Wait()
	return pathRun{elapsed: time.Since(start), accepted: int(accepted.Load()), confirmed: int(confirmed.Load())}, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// submitPath is the NATS path: admin.Client.Submit, then the result and,
// for an accepted one, the confirmation, within apiWait (as the API's
// Prefer: wait does).
func (e *benchEnv) submitPath() (apiPath, error) {
	c, err := admin.New(e.js)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, cmd events.DisconnectCommand) (bool, bool, error) {
		sub, err := c.Submit(ctx, cmd, admin.SubmitOptions{Confirm: true})
		if err != nil {
			return false, false, err
		}
		defer sub.Close()
		wctx, cancel := context.WithTimeout(ctx, apiWait)
		defer cancel()
		res, _, err := sub.Result(wctx)
		if err != nil {
			return false, false, err
		}
		if res.Status != events.StatusAccepted {
			return false, false, nil
		}
		_, err = sub.Confirmation(wctx)
		return true, err == nil, nil
	}, nil
}

// apiDoor is an api.Server served on a loopback port, and a client of it
// with a warm connection per slot.
type apiDoor struct {
	srv    *http.Server
	url    string
	token  string
	client *http.Client
	done   chan error
}

// startAPIDoor serves an api.Server over e's NATS connection with a token
// of every scope and no rate limit (the bench is one busy client).
func startAPIDoor(e *benchEnv, conc int) (*apiDoor, error) {
	token, file, err := api.NewTokenFile("bench", []api.Scope{api.ScopeCommandsWrite, api.ScopeCommandsRead})
	if err != nil {
		return nil, err
	}
	toks, err := api.ParseTokens(file)
	if err != nil {
		return nil, err
	}
	h, err := api.New(api.Config{JetStream: e.js, Tokens: toks, Rate: xrate.Inf, Burst: 1})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &apiDoor{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, url: "http://" + ln.Addr().String(), token: token,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}, done: make(chan error, 1)}
	go func() { d.done <- d.srv.Serve(ln) }()
	return d, nil
}

func (d *apiDoor) close() {
	_ = d.srv.Close()
	<-d.done
	d.client.CloseIdleConnections()
}

// post is the API path: POST /v1/disconnects with Prefer: wait; a 200
// with the result (and the confirmation when it came in time).
func (d *apiDoor) post(ctx context.Context, cmd events.DisconnectCommand) (bool, bool, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return false, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url+"/v1/disconnects", bytes.NewReader(body))
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Prefer", "wait="+strconv.Itoa(int(apiWait/time.Second)))
	resp, err := d.client.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, false, fmt.Errorf("POST /v1/disconnects: %s: %s", resp.Status, b)
	}
	var acc api.Accepted
	if err := json.Unmarshal(b, &acc); err != nil || acc.Result == nil {
		return false, false, errors.Join(errors.New("POST /v1/disconnects: no result in the 200"), err)
	}
	return acc.Result.Status == events.StatusAccepted, acc.Confirmation != nil, nil
}
