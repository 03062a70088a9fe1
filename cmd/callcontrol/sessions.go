package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/callcontrol/callcontrol/admin"
	"github.com/callcontrol/callcontrol/gateway"
)

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
	if err := checkAgentFlag(f.agent, false); err != nil {
		return err
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
	ctx, c, done, err := f.nf.client(ctx, "signin", 0)
	if err != nil {
		return err
	}
	defer done()
	if err := c.SignIn(ctx, gw, f.agent, req, f.authMode, force); err != nil {
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
	ctx, c, done, err := f.nf.client(ctx, "register", 0)
	if err != nil {
		return err
	}
	defer done()
	if err := c.RegisterSession(ctx, f.agent, guid, f.authMode); err != nil {
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
	ctx, c, done, err := f.nf.client(ctx, "signout", 0)
	if err != nil {
		return err
	}
	defer done()
	var gw *gateway.Client
	defer func() {
		if gw != nil {
			gw.Close()
		}
	}()
	var open func() (admin.Logouter, error)
	if f.gcfg.BaseURL != "" {
		open = func() (admin.Logouter, error) {
			var err error
			if gw, err = gateway.New(f.gcfg); err != nil {
				return nil, s.explain(err)
			}
			return gw, nil
		}
	}
	loggedOut, err := c.SignOut(ctx, f.agent, open)
	switch {
	case err != nil:
		return err
	case !loggedOut:
		fmt.Fprintf(stdout, "agent %d removed from the registry; not logged out at the gateway (no --gateway-url)\n", f.agent)
		return nil
	}
	fmt.Fprintf(stdout, "agent %d signed out\n", f.agent)
	return nil
}
