package gateway

import (
	"errors"
	"net/http"
	"testing"
)

// A gateway answer that repeats a key whose value the client reads (the
// envelope's retcode, message or event, or any key of the event, content
// included) is malformed, in any casing encoding/json would match: which
// copy wins is up to the parser, so the answer has no single meaning.
// Keys repeated where the client reads nothing (result) are left alone.
func TestRepeatedKeysMalformed(t *testing.T) {
	t.Parallel()
	ev := func(fields string) string { return `{"message":"","retcode":"0","event":{` + fields + `}}` }
	bad := map[string]string{
		"retcode":                      `{"message":"","retcode":"100-006","retcode":"0"}`,
		"retcode in other case":        `{"message":"","retcode":"100-006","RetCode":"0"}`,
		"retcode, same value":          `{"retcode":"0","message":"","retcode":"0"}`,
		"message":                      `{"message":"a","retcode":"0","MESSAGE":"b"}`,
		"event":                        `{"retcode":"0","event":null,"event":{"eventType":"AgentEvent_Call_Release","workNo":"101"}}`,
		"eventType":                    ev(`"eventType":"AgentEvent_Talking","workNo":"101","eventType":"AgentEvent_Call_Release"`),
		"workNo in other case":         ev(`"eventType":"AgentEvent_Call_Release","workNo":"101","WorkNo":"102"`),
		"content":                      ev(`"eventType":"AgentEvent_Call_Release","workNo":"101","content":"1-1","content":"1-2"`),
		"eventGenTime":                 ev(`"eventType":"X","workNo":"101","eventGenTime":1,"eventGenTime":2`),
		"content number":               ev(`"eventType":"AgentEvent_Customer_Release","workNo":"101","content":{"callid":"1-1","number":"5550102","number":"5550103"}`),
		"content callid in other case": ev(`"eventType":"AgentEvent_Call_Release","workNo":"101","content":{"callid":"1-1","callId":"1-2"}`),
		"deep in content":              ev(`"eventType":"X","workNo":"101","content":{"a":[{"b":1,"B":2}]}`),
	}
	for name, body := range bad {
		_, err := checkResponse("poll", &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}, []byte(body), nil)
		if !errors.Is(err, ErrMalformedResponse) || Classify(err) != ClassTransient {
			t.Errorf("%s: %s: error %v (class %s), want a transient ErrMalformedResponse", name, body, err, Classify(err))
		}
	}
	good := map[string]string{
		"repeats in result":          `{"message":"","retcode":"0","result":{"a":1,"a":2}}`,
		"same key in two objects":    ev(`"eventType":"X","workNo":"101","content":{"a":{"n":1},"b":{"n":2}}`),
		"keys of an array's objects": `{"retcode":"0","event":{"eventType":"X","workNo":"101","content":[{"k":1},{"k":2}]}}`,
	}
	for name, body := range good {
		if _, err := checkResponse("poll", &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}, []byte(body), nil); err != nil {
			t.Errorf("%s: %s: %v", name, body, err)
		}
	}
}
