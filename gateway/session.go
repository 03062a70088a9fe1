package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// SignInRequest is the JSON body of a sign-in (PUT onlineagent/{agentid}
// and its forcelogin variant), with the gateway's field names. Fields left at their zero value are omitted, so the gateway
// applies its own default, except Password, which is always sent. Booleans
// whose gateway default is true are pointers: nil keeps the default.
type SignInRequest struct {
	Password      string `json:"password"`                // ≤ 32 characters, may be empty
	PhoneNum      string `json:"phonenum,omitempty"`      // soft-phone or phone bound to the agent, ≤ 24
	AutoAnswer    *bool  `json:"autoanswer,omitempty"`    // answer calls automatically; gateway default true
	AutoEnterIdle *bool  `json:"autoenteridle,omitempty"` // go idle after a call; gateway default true
	ReleasePhone  *bool  `json:"releasephone,omitempty"`  // hang up the phone after a call; default true (sign-in), false (forcelogin)
	AgentType     int    `json:"agenttype,omitempty"`     // 4 PC+phone (gateway default), 11 PC+phone video
	Status        int    `json:"status,omitempty"`        // state after sign-in: 3 busy, 4 idle (gateway default), 5 wrap-up
	IP            string `json:"ip,omitempty"`            // client IPv4 address, ≤ 15; gateway default 127.0.0.1
	EntryIP       string `json:"entryIp,omitempty"`       // entry IP
	PhoneLinkage  bool   `json:"phonelinkage,omitempty"`  // phone linkage; default false
	CheckInWebm   *bool  `json:"checkInWebm,omitempty"`   // also sign into the web-chat media server; gateway default true
	CheckInMailm  bool   `json:"checkInMailm,omitempty"`  // also sign into the mail media server; default false
	VCPhoneNumber string `json:"vcPhoneNumber,omitempty"` // video-conference phone number, ≤ 24
	ListenStatus  bool   `json:"listenStatus,omitempty"`  // default false
	CallBackURI   string `json:"callBackUri,omitempty"`   // push-mode callback URL; with ServiceToken, disables polling
	ServiceToken  string `json:"serviceToken,omitempty"`  // push-mode token, ≤ 50
}

// setGUIDPrefix starts the Set-GUID header value of the gateway.
const setGUIDPrefix = "JSESSIONID="

// SignIn signs the agent in and returns its GUID: PUT
// onlineagent/{agentID}, or onlineagent/{agentID}/forcelogin when force is
// set (which takes over a session held elsewhere; without force an agent
// already signed in gets retcode 100-002, [ClassPermanent]).
//
// The GUID is the Set-GUID response header without its "JSESSIONID="
// prefix, e.g. "3f2a…-….AgentGateway0"; keep it opaque. A success answer
// without a usable Set-GUID is an [*Error] wrapping [ErrMalformedResponse].
// Start polling right after: the gateway signs out an agent that has not
// polled for about 2 minutes.
func (c *Client) SignIn(ctx context.Context, agentID int, req SignInRequest, force bool) (guid string, err error) {
	const op = "signin"
	if err := checkAgentID(op, agentID); err != nil {
		return "", err
	}
	path := agentPath("onlineagent", agentID)
	if force {
		path += "/forcelogin"
	}
	r, err := c.do(ctx, call{op: op, method: http.MethodPut, path: path, body: req, timeout: c.reqTimeout, secrets: []string{req.Password}})
	if err != nil {
		return "", err
	}
	guid, ok := parseSetGUID(r.header)
	if !ok {
		return "", &Error{Op: op, StatusCode: http.StatusOK, RetCode: string(r.env.RetCode),
			Err: fmt.Errorf("%w: no usable Set-GUID header", ErrMalformedResponse)}
	}
	return guid, nil
}

// Logout signs the agent out: DELETE onlineagent/{agentID}/logout. The
// gateway refuses it while the agent is talking (retcode 100-010). The
// GUID is invalid afterwards.
func (c *Client) Logout(ctx context.Context, agentID int, guid string) error {
	const op = "logout"
	if err := checkAgentID(op, agentID); err != nil {
		return err
	}
	if err := checkGUID(op, guid); err != nil {
		return err
	}
	_, err := c.do(ctx, call{
		op:      op,
		method:  http.MethodDelete,
		path:    agentPath("onlineagent", agentID) + "/logout",
		guid:    guid,
		timeout: c.reqTimeout,
		secrets: []string{guid},
	})
	return err
}

// parseSetGUID returns the GUID of a Set-GUID header: the value up to any
// ";" attribute, without the "JSESSIONID=" prefix. It reports false when
// the header is absent or the GUID could not be sent back as a header.
func parseSetGUID(h http.Header) (string, bool) {
	v, _, _ := strings.Cut(h.Get("Set-GUID"), ";")
	v = strings.TrimPrefix(strings.TrimSpace(v), setGUIDPrefix)
	return v, validGUID(v)
}
