package gatewaysim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// signInPhone signs id in over HTTP with the given soft-phone number.
func (b *bundle) signInPhone(id int, phone string) string {
	b.t.Helper()
	resp, rep := b.must(http.MethodPut, agentPath("/onlineagent/%d/forcelogin", id), "", map[string]any{"password": "pw", "phonenum": phone})
	if rep.RetCode != "0" {
		b.t.Fatalf("sign-in %d: retcode %s", id, rep.RetCode)
	}
	return strings.TrimPrefix(resp.Header.Get("Set-GUID"), setGUIDPrefix)
}

// events polls until the queue is empty and returns the events as
// "type" or "type:number" (Customer_Release) strings.
func (b *bundle) events(id int, guid string) []string {
	b.t.Helper()
	var out []string
	for {
		_, rep := b.poll(id, guid)
		if rep.RetCode != "0" || rep.Event == nil {
			return out
		}
		s := strings.TrimPrefix(rep.Event.EventType, "AgentEvent_")
		var c struct{ Number string }
		if json.Unmarshal(rep.Event.Content, &c) == nil && c.Number != "" {
			s += ":" + c.Number
		}
		out = append(out, s)
	}
}

func wantEvents(t *testing.T, who string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: events %v, want %v", who, got, want)
	}
}

// helpSetup signs in 101 (phone 70001) with a call from 5550100 and the
// helper 202 (phone 70002), and drains both queues.
func helpSetup(t *testing.T) (b *bundle, g101, g202 string) {
	t.Helper()
	b = setup(t, Config{})
	g101, g202 = b.signInPhone(101, "70001"), b.signInPhone(202, "70002")
	if _, err := b.sim.StartCall(101, "5550100"); err != nil {
		t.Fatal(err)
	}
	b.events(101, g101)
	b.events(202, g202)
	return b, g101, g202
}

func TestInnerHelpHelperSideTwoParty(t *testing.T) {
	b, g101, g202 := helpSetup(t)
	if err := b.sim.InnerHelp(101, 202, false); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "helper", b.events(202, g202), "Ringing", "Talking")
	help := b.sim.Calls(202)
	if len(help) != 1 || !help[0].Helper || help[0].Feature != featureHelp || !slices.Equal(help[0].Parties, []string{"101"}) ||
		help[0].CallID != b.sim.Calls(101)[1].CallID {
		t.Fatalf("helper's calls %+v, 101's %+v", help, b.sim.Calls(101))
	}
	b.events(101, g101)
	wantCode(t, "helper releases the asking agent", b.disconnect(202, g202, "101"), rcBadParam)
	wantCode(t, "helper leaves", b.disconnect(202, g202, "70002"), "0")
	wantEvents(t, "helper", b.events(202, g202), "Customer_Release:70002", "Call_Release")
	wantEvents(t, "asking agent", b.events(101, g101), "Customer_Release:202", "Call_Release")
	wantCode(t, "customer, now in the last call", b.disconnect(101, g101, "5550100"), "0")
}

func TestInnerHelpAskingAgentReleasesHelper(t *testing.T) {
	b, g101, g202 := helpSetup(t)
	b.sim.InnerHelp(101, 202, false)
	b.events(202, g202)
	wantCode(t, "release the helper", b.disconnect(101, g101, "202"), "0")
	wantEvents(t, "helper", b.events(202, g202), "Call_Release")
	if calls := b.sim.Calls(202); calls != nil {
		t.Fatalf("helper still has %+v", calls)
	}
}

func TestInnerHelpThreePartyAskingAgentLeaves(t *testing.T) {
	b, g101, g202 := helpSetup(t)
	if err := b.sim.InnerHelp(101, 202, true); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "helper", b.events(202, g202), "Ringing", "Talking", "Conference")
	b.events(101, g101)
	wantCode(t, "asking agent leaves by its soft phone", b.disconnect(101, g101, "70001"), "0")
	wantEvents(t, "asking agent", b.events(101, g101), "Customer_Release:70001", "Call_Release")
	wantEvents(t, "helper", b.events(202, g202), "Customer_Release:101")
	if calls := b.sim.Calls(202); len(calls) != 1 || !slices.Equal(calls[0].Parties, []string{"5550100"}) {
		t.Fatalf("helper's calls %+v, want the customer still connected", calls)
	}
	wantCode(t, "helper cannot release the customer", b.disconnect(202, g202, "5550100"), rcBadParam)
}

func TestInnerHelpThreePartyCustomerHangsUp(t *testing.T) {
	b, g101, g202 := helpSetup(t)
	b.sim.InnerHelp(101, 202, true)
	b.events(101, g101)
	b.events(202, g202)
	b.sim.CustomerHangup(101, "5550100")
	wantEvents(t, "asking agent", b.events(101, g101), "Customer_Release:5550100")
	wantEvents(t, "helper", b.events(202, g202), "Customer_Release:5550100")
}

func TestSoftphoneLeavesTwoPartyCall(t *testing.T) {
	b := setup(t, Config{})
	guid := b.signInPhone(101, "70001")
	id, _ := b.sim.StartCall(101, "5550100")
	b.events(101, guid)
	wantCode(t, "own soft phone", b.disconnect(101, guid, "70001"), "0")
	wantEvents(t, "agent", b.events(101, guid), "Customer_Release:70001", "Call_Release")
	recs := b.sim.Disconnects()
	if len(recs) != 1 || !recs[0].Executed || recs[0].CallID != id || recs[0].Number != "70001" {
		t.Fatalf("records %+v", recs)
	}
	wantCode(t, "no call left", b.disconnect(101, guid, "70001"), rcNoCall)
}
