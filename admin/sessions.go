package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RegisterSession stores agent's GUID in the session registry, where the
// pollers pick the agent up and the workers find its GUID, and publishes a
// "registered" session event (without the GUID; the pollers announce the
// same change under the same Nats-Msg-Id, see publishSessionEvent).
// authMode is the gateway's AUTHMODE (1 static GUID, 2 rotating).
func (c *Client) RegisterSession(ctx context.Context, agent int, guid string, authMode int) error {
	kv, err := c.js.KeyValue(ctx, events.BucketSessions)
	if err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	sess := events.Session{GUID: guid, AuthMode: authMode, State: events.SessionActive, UpdatedAt: c.now().UTC()}
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
	return c.publishSessionEvent(ctx, events.SessionEvent{AgentID: agent, Kind: events.SessionRegistered, At: sess.UpdatedAt}, rev)
}

// Session returns agent's session in the registry, or nil when it has
// none. An undecodable entry is returned as an empty session (no GUID to
// use: not [events.Session.Usable]).
func (c *Client) Session(ctx context.Context, agent int) (*events.Session, error) {
	kv, err := c.js.KeyValue(ctx, events.BucketSessions)
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
		return &events.Session{}, nil
	}
	return &sess, nil
}

// RemoveSession deletes agent from the registry and publishes
// "signed_out" with reason (the pollers announce the same change under
// the same Nats-Msg-Id). It does not log the agent out at the gateway:
// [Client.SignOut] does.
func (c *Client) RemoveSession(ctx context.Context, agent int, reason string) error {
	// A KV delete is a publish of a delete marker on $KV.<bucket>.<key>;
	// made directly, its ack tells the revision (kv.Delete does not).
	del := nats.NewMsg("$KV." + events.BucketSessions + "." + strconv.Itoa(agent))
	del.Header.Set("KV-Operation", "DEL")
	ack, err := c.js.PublishMsg(ctx, del)
	if err != nil {
		return fmt.Errorf("session registry: %w", err)
	}
	ev := events.SessionEvent{AgentID: agent, Kind: events.SessionSignedOut, Reason: reason, At: c.now().UTC()}
	return c.publishSessionEvent(ctx, ev, ack.Sequence)
}

// publishSessionEvent announces the session change stored at revision rev
// of the registry, under the Nats-Msg-Id the pollers give the same change
// ("session-<agent>-<rev>"), so that it is stored once whoever publishes
// it first.
func (c *Client) publishSessionEvent(ctx context.Context, ev events.SessionEvent, rev uint64) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.SessionEventSubject(ev.AgentID, ev.Kind))
	m.Header.Set(events.HeaderMsgID, "session-"+strconv.Itoa(ev.AgentID)+"-"+strconv.FormatUint(rev, 10))
	m.Data = b
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("session event: %w", err)
	}
	return nil
}

// ErrSignedInElsewhere: the gateway answered 100-002 to a sign-in without
// force.
var ErrSignedInElsewhere = errors.New("already signed in elsewhere (gateway retcode 100-002); " +
	"--force takes the session over with forcelogin, which signs the other client out")

// signer signs an agent in at the gateway; *gateway.Client is one.
type signer interface {
	SignIn(ctx context.Context, agentID int, req gateway.SignInRequest, force bool) (guid string, err error)
}

// SignIn signs agent in at the gateway and registers the GUID. When the
// gateway answers 100-002 (signed in elsewhere) it takes the session over
// with forcelogin only if force is set; otherwise it fails with
// [ErrSignedInElsewhere] and changes nothing.
func (c *Client) SignIn(ctx context.Context, gw signer, agent int, req gateway.SignInRequest, authMode int, force bool) error {
	guid, err := gw.SignIn(ctx, agent, req, false)
	if gateway.RetCodeOf(err) == "100-002" {
		if !force {
			return fmt.Errorf("sign in agent %d: %w", agent, ErrSignedInElsewhere)
		}
		guid, err = gw.SignIn(ctx, agent, req, true)
	}
	if err != nil {
		return fmt.Errorf("sign in agent %d: %w", agent, err)
	}
	return c.RegisterSession(ctx, agent, guid, authMode)
}

// ErrNotSignedIn: the agent was not signed in (see [NotSignedInError]).
var ErrNotSignedIn = errors.New("not signed in")

// ErrLogoutFailed: the gateway refused or did not answer a logout (see
// [LogoutError]).
var ErrLogoutFailed = errors.New("logout failed")

// NotSignedInError is [Client.SignOut]'s error for an agent that was not
// signed in: no session registered, a session without a GUID or that the
// gateway had rejected, or a GUID the gateway does not know. Removed
// says whether a registry entry was removed.
type NotSignedInError struct {
	Agent   int
	Removed bool
	Detail  string // why, as an operator reads it
	Err     error  // the gateway's error, if it told
}

func (e *NotSignedInError) Error() string { return e.Detail }

// Unwrap returns the gateway's error, if any.
func (e *NotSignedInError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotSignedIn) true.
func (e *NotSignedInError) Is(target error) bool { return target == ErrNotSignedIn }

// LogoutError is [Client.SignOut]'s error when the gateway refused or did
// not answer the logout: the session is still registered.
type LogoutError struct {
	Agent int
	Err   error // the gateway's error
}

func (e *LogoutError) Error() string {
	return fmt.Sprintf("agent %d not signed out: the gateway refused or did not answer the logout (%v); its session is still registered", e.Agent, e.Err)
}

// Unwrap returns the gateway's error.
func (e *LogoutError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrLogoutFailed) true.
func (e *LogoutError) Is(target error) bool { return target == ErrLogoutFailed }

// Logouter logs an agent out at the gateway; *gateway.Client is one.
type Logouter interface {
	Logout(ctx context.Context, agentID int, guid string) error
}

// signOutReason is the reason of the signed_out event SignOut publishes.
const signOutReason = "signed out by callcontrol signout"

// SignOut logs agent out at the gateway and removes its session from the
// registry. open returns the gateway client; it is called only when a
// usable session is registered, and its error is returned as is. A nil
// open removes the session without a logout (loggedOut false). Errors: a
// [*NotSignedInError] when the agent was not signed in (an invalid
// session, or one the gateway rejects, is removed then); a
// [*LogoutError] when the gateway refused or did not answer (the session
// stays registered, so SignOut can be run again).
func (c *Client) SignOut(ctx context.Context, agent int, open func() (Logouter, error)) (loggedOut bool, err error) {
	sess, err := c.Session(ctx, agent)
	switch {
	case err != nil:
		return false, err
	case sess == nil:
		return false, &NotSignedInError{Agent: agent, Detail: fmt.Sprintf("agent %d is not signed in: no session registered", agent)}
	case !sess.Usable():
		return false, c.removeInvalid(ctx, agent, sess)
	case open == nil:
		return false, c.RemoveSession(ctx, agent, signOutReason)
	}
	gw, err := open()
	if err != nil {
		return false, err
	}
	lerr := gw.Logout(ctx, agent, sess.GUID)
	switch gateway.Classify(lerr) {
	case gateway.ClassSuccess:
	case gateway.ClassSession:
		if err := c.RemoveSession(ctx, agent, signOutReason); err != nil {
			return false, err
		}
		return false, &NotSignedInError{Agent: agent, Removed: true, Err: lerr,
			Detail: fmt.Sprintf("agent %d was not signed in at the gateway, which rejected its GUID (%v); removed from the registry", agent, lerr)}
	default:
		return false, &LogoutError{Agent: agent, Err: lerr}
	}
	if err := c.RemoveSession(ctx, agent, signOutReason); err != nil {
		return true, fmt.Errorf("agent %d logged out at the gateway, but not removed from the registry: %w", agent, err)
	}
	return true, nil
}

// removeInvalid removes a session that cannot be used and says why the
// agent was not signed in.
func (c *Client) removeInvalid(ctx context.Context, agent int, sess *events.Session) error {
	if err := c.RemoveSession(ctx, agent, signOutReason); err != nil {
		return err
	}
	why := "it has no GUID"
	if sess.State == events.SessionInvalid {
		why = "the gateway had rejected its GUID (" + cmp.Or(sess.Reason, "session error") + ")"
	}
	return &NotSignedInError{Agent: agent, Removed: true,
		Detail: fmt.Sprintf("agent %d was not signed in: its session was invalid, %s; removed from the registry", agent, why)}
}
