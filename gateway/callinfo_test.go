package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// simBundle is a simulator served over HTTPS with a generated certificate,
// and a client that trusts it.
type simBundle struct {
	sim    *gatewaysim.Sim
	client *Client
}

func setupSim(t *testing.T, cfg gatewaysim.Config) *simBundle {
	t.Helper()
	certPEM, keyPEM, err := gatewaysim.GenerateCert()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sim := gatewaysim.New(cfg)
	srv := httptest.NewUnstartedServer(sim)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &simBundle{sim: sim, client: newClient(t, srv.URL, func(c *Config) { c.RootCAs = pool })}
}

// signIn signs agent in through the client with soft phone 70001.
func (b *simBundle) signIn(t *testing.T, agent int) string {
	t.Helper()
	guid, err := b.client.SignIn(context.Background(), agent, SignInRequest{PhoneNum: "70001"}, true)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return guid
}

func (b *simBundle) callInfo(t *testing.T, guid string) CallInfo {
	t.Helper()
	ci, err := b.client.CallInfo(context.Background(), testAgent, guid)
	if err != nil {
		t.Fatalf("CallInfo: %v", err)
	}
	return ci
}

func TestCallInfo_Simulator(t *testing.T) {
	t.Parallel()
	b := setupSim(t, gatewaysim.Config{})
	guid := b.signIn(t, testAgent)
	if ci := b.callInfo(t, guid); ci.CallID != "" || ci.Parties != nil || ci.Held {
		t.Fatalf("no call: %+v, want the zero CallInfo", ci)
	}
	first, _ := b.sim.StartCall(testAgent, testNumber)
	ci := b.callInfo(t, guid)
	if ci.CallID != first || !slices.Equal(ci.Parties, []string{testNumber}) || ci.Held || ci.Feature != 0 ||
		time.Since(ci.Began) > time.Minute {
		t.Fatalf("current call %+v, want %s with %s", ci, first, testNumber)
	}
	if err := b.sim.InnerHelp(testAgent, 202, false); err != nil {
		t.Fatal(err)
	}
	if ci := b.callInfo(t, guid); ci.CallID == first || !slices.Equal(ci.Parties, []string{"202"}) || ci.Feature != 51 || ci.Held {
		t.Fatalf("during two-party help %+v, want the help call with 202", ci)
	}
	b.sim.CustomerHangup(testAgent, "202") // the held customer's call is the last call again
	if ci := b.callInfo(t, guid); ci.CallID != first || !ci.Held {
		t.Fatalf("held call %+v, want %s held", ci, first)
	}
	b.sim.CustomerHangup(testAgent, testNumber)
	if ci := b.callInfo(t, guid); ci.CallID != "" {
		t.Fatalf("after the call ended %+v, want no call", ci)
	}
	second, _ := b.sim.Redial(testAgent, "")
	if ci := b.callInfo(t, guid); ci.CallID != second || second == first {
		t.Fatalf("after the redial %+v, want the new call %s (old %s)", ci, second, first)
	}
}

func TestCallInfoByCallID_Simulator(t *testing.T) {
	t.Parallel()
	b := setupSim(t, gatewaysim.Config{})
	guid := b.signIn(t, testAgent)
	first, _ := b.sim.Callout(testAgent, testNumber, "")
	ctx := context.Background()
	ci, err := b.client.CallInfoByCallID(ctx, testAgent, first, guid)
	if err != nil || ci.CallID != first || ci.Feature != 7 || ci.Called != testNumber || !slices.Equal(ci.Parties, []string{testNumber}) {
		t.Fatalf("CallInfoByCallID = %+v, %v", ci, err)
	}
	b.sim.EndCall(testAgent, "")
	if ci, err := b.client.CallInfoByCallID(ctx, testAgent, first, guid); err != nil || ci.CallID != "" {
		t.Fatalf("ended call: %+v, %v; want no call", ci, err)
	}
	if _, err := b.client.CallInfoByCallID(ctx, testAgent, first, "stale.AgentGateway0"); Classify(err) != ClassSession {
		t.Fatalf("stale GUID: %v", err)
	}
}

func TestCallInfo_SimulatorFaults(t *testing.T) {
	t.Parallel()
	b := setupSim(t, gatewaysim.Config{})
	guid := b.signIn(t, testAgent)
	b.sim.StartCall(testAgent, testNumber)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.Fault5xx}, Queries: true})
	_, err := b.client.CallInfo(context.Background(), testAgent, guid)
	if e := asError(t, err); e.Op != "callinfo" || e.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("5xx: %+v", e)
	}
	wantClass(t, err, ClassTransient)
	b.sim.SetFaults(gatewaysim.Faults{Rate: 1, Kinds: []gatewaysim.Fault{gatewaysim.FaultRetCode}, RetCodes: []string{"100-006"}, Queries: true})
	_, err = b.client.CallInfo(context.Background(), testAgent, guid)
	wantClass(t, err, ClassSession)
	if strings.Contains(err.Error(), guid) {
		t.Fatalf("error %q holds the GUID", err)
	}
}

func TestCallInfo_Shapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       CallInfo
		wantErr    error // nil: success
	}{
		{"no result", `{"message":"","retcode":"0"}`, CallInfo{}, nil},
		{"null", `{"retcode":"0","result":null}`, CallInfo{}, nil},
		{"empty object", `{"retcode":"0","result":{}}`, CallInfo{}, nil},
		{"no call retcode", `{"retcode":"200-026","message":"no call"}`, CallInfo{}, nil},
		{"numbers and casing", `{"retcode":"0","result":{"callId":"1-2","CALLER":5550100,"called":101,"callfeature":"0","begintime":1700000000000,"endtime":0}}`,
			CallInfo{CallID: "1-2", Parties: []string{"5550100"}, Caller: "5550100", Called: "101", Feature: 0, Began: time.UnixMilli(1700000000000)}, nil},
		{"begin time as text", `{"retcode":"0","result":{"callid":"1-2","caller":"5550100","called":"60015","begintime":"1700000000000"}}`,
			CallInfo{CallID: "1-2", Parties: []string{"5550100", "60015"}, Caller: "5550100", Called: "60015", Feature: -1, Began: time.UnixMilli(1700000000000)}, nil},
		{"odd field types ignored", `{"retcode":"0","result":{"callid":"1-2","caller":"5550100","called":true,"begintime":"yesterday"}}`,
			CallInfo{CallID: "1-2", Parties: []string{"5550100"}, Caller: "5550100", Feature: -1}, nil},
		{"list", `{"retcode":"0","result":[{"callid":"1-1","caller":"5550199"},{"callid":"1-2","caller":"5550100"}]}`,
			CallInfo{CallID: "1-2", Parties: []string{"5550100"}, Caller: "5550100", Feature: -1}, nil},
		{"ended previous call", `{"retcode":"0","result":{"callid":"1-2","caller":"5550100","endtime":1700000009000}}`, CallInfo{}, nil},
		{"no callid", `{"retcode":"0","result":{"caller":"5550100"}}`, CallInfo{}, ErrMalformedResponse},
		{"result is a string", `{"retcode":"0","result":"1-2"}`, CallInfo{}, ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /calldata/101/callinfo", func(w http.ResponseWriter, r *http.Request) {
				testHeader(t, r, "Guid", testGUID)
				if r.URL.Query().Get("isNoContainLastCall") != "true" {
					t.Errorf("query %q, want isNoContainLastCall=true", r.URL.RawQuery)
				}
				respond(w, http.StatusOK, tt.body)
			})
			b.mux.HandleFunc("GET /calldata/101/holdlist", func(w http.ResponseWriter, r *http.Request) {
				respond(w, http.StatusOK, retcode("400-003", "no held call"))
			})
			ci, err := b.client.CallInfo(context.Background(), testAgent, testGUID)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !sameCallInfo(ci, tt.want) {
				t.Fatalf("CallInfo %+v, want %+v", ci, tt.want)
			}
		})
	}
}

func TestCallInfo_HeldFromHoldList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /calldata/101/callinfo", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, `{"retcode":"0"}`)
	})
	b.mux.HandleFunc("GET /calldata/101/holdlist", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, `{"retcode":"0","result":[{"callid":"1-1","caller":"5550199"},{"callid":"1-2","caller":"5550100"}]}`)
	})
	ci, err := b.client.CallInfo(context.Background(), testAgent, testGUID)
	if err != nil || ci.CallID != "1-2" || !ci.Held {
		t.Fatalf("CallInfo = %+v, %v; want the last held call 1-2", ci, err)
	}
}

func TestCallInfo_InvalidInputSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err1 := b.client.CallInfo(ctx, 100, testGUID)
	_, err2 := b.client.CallInfo(ctx, testAgent, "bad guid")
	_, err3 := b.client.CallInfoByCallID(ctx, testAgent, "1-2/../x", testGUID)
	_, err4 := b.client.CallInfoByCallID(ctx, testAgent, "", testGUID)
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("case %d: %v, want ErrInvalidInput", i, err)
		}
		wantClass(t, err, ClassPermanent)
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("%d requests sent for invalid input", n)
	}
}

// sameCallInfo compares two CallInfo values field by field.
func sameCallInfo(a, b CallInfo) bool {
	return a.CallID == b.CallID && slices.Equal(a.Parties, b.Parties) && a.Caller == b.Caller &&
		a.Called == b.Called && a.Feature == b.Feature && a.Held == b.Held && a.Began.Equal(b.Began)
}
