package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// registerSession stores agent's GUID in the session registry, where the
// pollers pick the agent up and the workers find its GUID, and publishes a
// "registered" session event (without the GUID; the pollers announce the
// same change under the same Nats-Msg-Id, see publishSessionEvent).
func registerSession(ctx context.Context, js jetstream.JetStream, agent int, guid string, authMode int) error {
	kv, err := js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	sess := events.Session{GUID: guid, AuthMode: authMode, State: events.SessionActive, UpdatedAt: time.Now().UTC()}
	if i := strings.LastIndexByte(guid, '.'); i >= 0 {
		sess.Node = guid[i+1:]
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	rev, err := kv.Put(ctx, strconv.Itoa(agent), b)
	if err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	return publishSessionEvent(ctx, js, events.SessionEvent{AgentID: agent, Kind: events.SessionRegistered, At: sess.UpdatedAt}, rev)
}

// storedSession returns agent's session in the registry, or nil.
func storedSession(ctx context.Context, js jetstream.JetStream, agent int) (*events.Session, error) {
	kv, err := js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		return nil, fmt.Errorf("session registry: %w", err)
	}
	e, err := kv.Get(ctx, strconv.Itoa(agent))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session registry: %w", err)
	}
	var sess events.Session
	if err := json.Unmarshal(e.Value(), &sess); err != nil {
		return &events.Session{}, nil // undecodable: there is no GUID to use
	}
	return &sess, nil
}

// removeSession deletes agent from the registry and publishes "signed_out"
// (the pollers announce the same change under the same Nats-Msg-Id).
func removeSession(ctx context.Context, js jetstream.JetStream, agent int, reason string) error {
	// A KV delete is a publish of a delete marker on $KV.<bucket>.<key>;
	// made directly, its ack tells the revision (kv.Delete does not).
	del := nats.NewMsg("$KV." + events.BucketSessions + "." + strconv.Itoa(agent))
	del.Header.Set("KV-Operation", "DEL")
	ack, err := js.PublishMsg(ctx, del)
	if err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	ev := events.SessionEvent{AgentID: agent, Kind: events.SessionSignedOut, Reason: reason, At: time.Now().UTC()}
	return publishSessionEvent(ctx, js, ev, ack.Sequence)
}

// publishSessionEvent announces the session change stored at revision rev
// of the registry, under the Nats-Msg-Id the pollers give the same change
// ("session-<agent>-<rev>"), so that it is stored once whoever publishes
// it first.
func publishSessionEvent(ctx context.Context, js jetstream.JetStream, ev events.SessionEvent, rev uint64) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.SessionEventSubject(ev.AgentID, ev.Kind))
	m.Header.Set(events.HeaderMsgID, "session-"+strconv.Itoa(ev.AgentID)+"-"+strconv.FormatUint(rev, 10))
	m.Data = b
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("session event: %w", err)
	}
	return nil
}

// errSignedInElsewhere: the gateway answered 100-002 and --force was not given.
var errSignedInElsewhere = errors.New("already signed in elsewhere (gateway retcode 100-002); " +
	"--force takes the session over with forcelogin, which signs the other client out")

// signIn signs agent in at the gateway and registers the GUID. When the
// gateway answers 100-002 (signed in elsewhere) it takes the session over
// with forcelogin only if force is set; otherwise it fails with
// errSignedInElsewhere and changes nothing.
func signIn(ctx context.Context, js jetstream.JetStream, gw *gateway.Client, agent int, req gateway.SignInRequest, authMode int, force bool) error {
	guid, err := gw.SignIn(ctx, agent, req, false)
	if gateway.RetCodeOf(err) == "100-002" {
		if !force {
			return fmt.Errorf("sign in agent %d: %w", agent, errSignedInElsewhere)
		}
		guid, err = gw.SignIn(ctx, agent, req, true)
	}
	if err != nil {
		return fmt.Errorf("sign in agent %d: %w", agent, err)
	}
	return registerSession(ctx, js, agent, guid, authMode)
}

// sessionFlags are the flags of signin, signout and register.
type sessionFlags struct {
	nf       natsFlags
	agent    int
	authMode int
	gcfg     gateway.Config
}

func (f *sessionFlags) register(s *settings) {
	f.nf.register(s, defaultNATSURL)
	s.fs.IntVar(&f.agent, "agent", 0, "agent ID (101-59999)")
	s.fs.IntVar(&f.authMode, "authmode", 2, "the gateway's AUTHMODE: 1 static GUID, 2 rotating")
}

func (f *sessionFlags) check() error {
	if f.agent < events.AgentIDMin || f.agent > events.AgentIDMax {
		return fmt.Errorf("--agent (CALLCONTROL_AGENT): must be between %d and %d, got %d", events.AgentIDMin, events.AgentIDMax, f.agent)
	}
	if f.authMode != 1 && f.authMode != 2 {
		return fmt.Errorf("--authmode (CALLCONTROL_AUTHMODE): must be 1 or 2, got %d", f.authMode)
	}
	return nil
}

// runSignIn signs an agent in through the gateway and registers it.
func runSignIn(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("signin", stdout)
	var (
		f     sessionFlags
		req   gateway.SignInRequest
		force bool
	)
	f.register(s)
	gatewayFlags(s, &f.gcfg)
	s.fs.BoolVar(&force, "force", false, "if the agent is signed in elsewhere (gateway 100-002), take the session over (forcelogin: the other client is signed out)")
	s.fs.StringVar(&req.Password, "password", "", "the agent's password (prefer CALLCONTROL_PASSWORD)")
	s.fs.StringVar(&req.PhoneNum, "phonenum", "", "soft-phone or phone number bound to the agent")
	s.secret("password")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	gw, err := gateway.New(f.gcfg)
	if err != nil {
		return s.explain(err)
	}
	defer gw.Close()
	nc, js, err := f.nf.connect("signin")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := signIn(ctx, js, gw, f.agent, req, f.authMode, force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "agent %d signed in and registered\n", f.agent)
	return nil
}

// runRegister registers a GUID obtained elsewhere (e.g. by an agent desktop).
func runRegister(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("register", stdout)
	var (
		f    sessionFlags
		guid string
	)
	f.register(s)
	s.fs.StringVar(&guid, "guid", "", "the agent's GUID (prefer CALLCONTROL_GUID: a secret)")
	s.secret("guid")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if guid == "" || strings.ContainsAny(guid, " \r\n\t") {
		return errors.New("--guid (CALLCONTROL_GUID): required, without spaces")
	}
	nc, js, err := f.nf.connect("register")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := registerSession(ctx, js, f.agent, guid, f.authMode); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "agent %d registered\n", f.agent)
	return nil
}

// runSignOut logs an agent out at the gateway (when --gateway-url is set)
// and removes its session from the registry. It fails, saying so, when the
// agent was not signed in: no session registered, a session the gateway
// had already rejected (invalid), or a GUID the gateway does not know
// (the registry entry is removed then). A logout the gateway did not
// answer leaves the session registered, so signout can be run again.
func runSignOut(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("signout", stdout)
	var f sessionFlags
	f.register(s)
	gatewayFlags(s, &f.gcfg)
	if err := s.parse(args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	nc, js, err := f.nf.connect("signout")
	if err != nil {
		return err
	}
	defer nc.Close()
	sess, err := storedSession(ctx, js, f.agent)
	switch {
	case err != nil:
		return err
	case sess == nil:
		return fmt.Errorf("agent %d is not signed in: no session registered", f.agent)
	}
	const reason = "signed out by callcontrol signout"
	if !sess.Usable() {
		if err := removeSession(ctx, js, f.agent, reason); err != nil {
			return err
		}
		why := "it has no GUID"
		if sess.State == events.SessionInvalid {
			why = "the gateway had rejected its GUID (" + cmp.Or(sess.Reason, "session error") + ")"
		}
		return fmt.Errorf("agent %d was not signed in: its session was invalid, %s; removed from the registry", f.agent, why)
	}
	if f.gcfg.BaseURL == "" {
		if err := removeSession(ctx, js, f.agent, reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "agent %d removed from the registry; not logged out at the gateway (no --gateway-url)\n", f.agent)
		return nil
	}
	gw, err := gateway.New(f.gcfg)
	if err != nil {
		return s.explain(err)
	}
	defer gw.Close()
	lerr := gw.Logout(ctx, f.agent, sess.GUID)
	switch gateway.Classify(lerr) {
	case gateway.ClassSuccess:
	case gateway.ClassSession:
		if err := removeSession(ctx, js, f.agent, reason); err != nil {
			return err
		}
		return fmt.Errorf("agent %d was not signed in at the gateway, which rejected its GUID (%w); removed from the registry", f.agent, lerr)
	default:
		return fmt.Errorf("agent %d not signed out: the gateway refused or did not answer the logout (%w); its session is still registered", f.agent, lerr)
	}
	if err := removeSession(ctx, js, f.agent, reason); err != nil {
		return fmt.Errorf("agent %d logged out at the gateway, but not removed from the registry: %w", f.agent, err)
	}
	fmt.Fprintf(stdout, "agent %d signed out\n", f.agent)
	return nil
}
