package events

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// asyncapiDoc is asyncapi.yaml as text (for the names it must mention) and
// as parsed by a real YAML parser.
type asyncapiDoc struct {
	text string
	tree map[string]any
}

func loadAsyncAPI(t *testing.T) asyncapiDoc {
	t.Helper()
	data, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := asyncapiDoc{text: string(data)}
	if err := yaml.Unmarshal(data, &doc.tree); err != nil {
		t.Fatalf("asyncapi.yaml is not valid YAML: %v", err)
	}
	if v, _ := doc.tree["asyncapi"].(string); v != "3.0.0" {
		t.Fatalf("asyncapi.yaml: asyncapi is %#v, want the string 3.0.0", doc.tree["asyncapi"])
	}
	return doc
}

// yamlLookup finds the mapping entry at path (a key at each level) and
// returns its value as text when it is a scalar, and the value itself.
func yamlLookup(doc asyncapiDoc, path ...string) (value string, node any, ok bool) {
	node = doc.tree
	for _, key := range path {
		m, isMap := node.(map[string]any)
		if !isMap {
			return "", nil, false
		}
		if node, ok = m[key]; !ok {
			return "", nil, false
		}
	}
	switch v := node.(type) {
	case map[string]any, []any, nil:
	default:
		value = fmt.Sprint(v)
	}
	return value, node, true
}

// yamlList returns the scalar items of a list.
func yamlList(node any) []string {
	var items []string
	l, _ := node.([]any)
	for _, x := range l {
		items = append(items, fmt.Sprint(x))
	}
	return items
}

// yamlKeys returns the keys of a mapping.
func yamlKeys(node any) []string {
	m, _ := node.(map[string]any)
	return slices.Collect(maps.Keys(m))
}

func mustLookup(t *testing.T, doc asyncapiDoc, path ...string) (string, any) {
	t.Helper()
	v, node, ok := yamlLookup(doc, path...)
	if !ok {
		t.Fatalf("asyncapi.yaml has no %s", strings.Join(path, "."))
	}
	return v, node
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// contractConstants evaluates every exported constant of subjects.go: the
// names of subjects, streams, consumers, buckets and headers.
func contractConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "subjects.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]ast.Expr{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					t.Fatalf("subjects.go: %s has no value of its own", n.Name)
				}
				exprs[n.Name] = vs.Values[i]
			}
		}
	}
	var eval func(ast.Expr) string
	eval = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(e.Value); err == nil {
				return s
			}
		case *ast.Ident:
			if x, ok := exprs[e.Name]; ok {
				return eval(x)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				return eval(e.X) + eval(e.Y)
			}
		}
		t.Fatalf("subjects.go: cannot evaluate %T", e)
		return ""
	}
	values := map[string]string{}
	for name, e := range exprs {
		if ast.IsExported(name) {
			values[name] = eval(e)
		}
	}
	if values["SubjectMaxDeliveries"] != SubjectMaxDeliveries || values["HeaderMsgID"] != HeaderMsgID {
		t.Fatal("contractConstants evaluates subjects.go wrongly")
	}
	return values
}

// asyncapi.yaml names every subject, stream, consumer, bucket and header of
// subjects.go, and references every schema file.
func TestAsyncAPINamesContract(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	for name, value := range contractConstants(t) {
		if !strings.Contains(doc.text, value) {
			t.Errorf("asyncapi.yaml does not mention %s (%q)", name, value)
		}
	}
	files, err := filepath.Glob("schema/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, m := range regexp.MustCompile(`\$ref: '(\./schema/[^']*)'`).FindAllStringSubmatch(doc.text, -1) {
		if !slices.Contains(refs, m[1]) {
			refs = append(refs, m[1])
		}
	}
	for i, f := range files {
		files[i] = "./" + f
	}
	if got, want := sorted(refs), sorted(files); !slices.Equal(got, want) {
		t.Errorf("asyncapi.yaml references %v, schema/ holds %v", got, want)
	}
}

// Each channel's address is the subject the Go functions build, with its
// parameters in braces, and the parameters' enums are the Go constants.
func TestAsyncAPIChannels(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	tests := []struct {
		channel, address string
		params           map[string]string // parameter -> value in subject
		subject          string            // built by Go with those values
		enums            map[string][]string
	}{
		{"disconnect", SubjectDisconnect, nil, SubjectDisconnect, nil},
		{
			"results", SubjectResults + ".{status}", map[string]string{"status": "accepted"}, ResultSubject(StatusAccepted),
			map[string][]string{"status": constants(t, func(_, typ string) bool { return typ == "Status" })},
		},
		{"deadLetter", SubjectDeadLetter, nil, SubjectDeadLetter, nil},
		{"maxDeliveries", SubjectMaxDeliveries, nil, SubjectMaxDeliveries, nil},
		{
			"agentEvents", SubjectAgentEvents + ".{agent_id}.{eventType}",
			map[string]string{"agent_id": "101", "eventType": "AgentEvent_Customer_Release"},
			AgentEventSubject(101, EventCustomerRelease), nil,
		},
		{
			"confirmations", SubjectConfirmations + ".{status}", map[string]string{"status": "unconfirmed"},
			ConfirmationSubject(ConfirmationUnconfirmed),
			map[string][]string{"status": constants(t, func(_, typ string) bool { return typ == "ConfirmationStatus" })},
		},
		{
			"sessionEvents", SubjectSessionEvents + ".{agent_id}.{kind}", map[string]string{"agent_id": "59999", "kind": "signed_out"},
			SessionEventSubject(59999, SessionSignedOut),
			map[string][]string{"kind": constants(t, func(_, typ string) bool { return typ == "SessionEventKind" })},
		},
	}
	var names []string
	for _, tt := range tests {
		names = append(names, tt.channel)
		if address, _ := mustLookup(t, doc, "channels", tt.channel, "address"); address != tt.address {
			t.Errorf("channel %s: address %q, want %q", tt.channel, address, tt.address)
		}
		built := tt.address
		for p, v := range tt.params {
			built = strings.ReplaceAll(built, "{"+p+"}", v)
		}
		if built != tt.subject {
			t.Errorf("channel %s: %q with %v is %q, Go builds %q", tt.channel, tt.address, tt.params, built, tt.subject)
		}
		_, params, _ := yamlLookup(doc, "channels", tt.channel, "parameters")
		var want []string
		for p := range tt.params {
			want = append(want, p)
		}
		if got := yamlKeys(params); !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("channel %s: parameters %v, address has %v", tt.channel, got, want)
		}
		for p, w := range tt.enums {
			if _, enum := mustLookup(t, doc, "channels", tt.channel, "parameters", p, "enum"); !slices.Equal(sorted(yamlList(enum)), w) {
				t.Errorf("channel %s: %s enum %v, Go constants %v", tt.channel, p, yamlList(enum), w)
			}
		}
	}
	if _, block := mustLookup(t, doc, "channels"); !slices.Equal(sorted(yamlKeys(block)), sorted(names)) {
		t.Errorf("channels %v, tested %v", yamlKeys(block), names)
	}
}

// Each message has the payload schema, the required headers and the
// Nats-Msg-Id that the Go code gives it, and only headers of subjects.go.
func TestAsyncAPIMessages(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	idPattern := fmt.Sprintf("[A-Za-z0-9_-]{1,%d}$", MaxCommandIDLen)
	tests := []struct {
		message, payload string
		required         []string
		msgIDPattern     string
		statuses         []string // the Callcontrol-Status enum
	}{
		{"DisconnectCommand", "./schema/disconnect_command.schema.json", []string{HeaderMsgID},
			"^" + idPattern + "|^replay-" + strings.TrimSuffix(idPattern, "$") + "-(dlq)?[0-9]{1,20}$", nil},
		{
			"Result", "./schema/result.schema.json", []string{HeaderMsgID, HeaderCommandID, HeaderStatus},
			"^" + ResultMsgID("") + strings.TrimSuffix(idPattern, "$") + "(" + ReplayMsgIDSuffix("0")[:len("-replay-")] + "[0-9]{1,20})?$",
			constants(t, func(_, typ string) bool { return typ == "Status" }),
		},
		{"DeadLetterCommand", "", []string{HeaderReason, HeaderCommandID}, "", nil},
		{"AgentEvent", "./schema/agent_event.schema.json", []string{HeaderMsgID}, "^ev-[0-9a-f]{32}$", nil},
		{
			"Confirmation", "./schema/confirmation.schema.json", []string{HeaderMsgID, HeaderCommandID, HeaderStatus},
			"^" + ConfirmationMsgID("") + idPattern, constants(t, func(_, typ string) bool { return typ == "ConfirmationStatus" }),
		},
		{"SessionEvent", "./schema/session_event.schema.json", nil, "", nil},
		{"MaxDeliveriesAdvisory", "", nil, "", nil},
	}
	headers := map[string]bool{}
	for name, v := range contractConstants(t) {
		if strings.HasPrefix(name, "Header") {
			headers[v] = true
		}
	}
	var names []string
	for _, tt := range tests {
		names = append(names, tt.message)
		msg := []string{"components", "messages", tt.message}
		if ref, _, _ := yamlLookup(doc, append(msg, "payload", "$ref")...); ref != tt.payload {
			t.Errorf("%s: payload $ref %q, want %q", tt.message, ref, tt.payload)
		}
		_, req, _ := yamlLookup(doc, append(msg, "headers", "required")...)
		if got := yamlList(req); !slices.Equal(sorted(got), sorted(tt.required)) {
			t.Errorf("%s: required headers %v, want %v", tt.message, got, tt.required)
		}
		_, props, _ := yamlLookup(doc, append(msg, "headers", "properties")...)
		for _, h := range yamlKeys(props) {
			if !headers[h] {
				t.Errorf("%s: header %s is not declared in subjects.go", tt.message, h)
			}
		}
		if p, _, _ := yamlLookup(doc, append(msg, "headers", "properties", HeaderMsgID, "pattern")...); p != tt.msgIDPattern {
			t.Errorf("%s: %s pattern %q, want %q", tt.message, HeaderMsgID, p, tt.msgIDPattern)
		}
		if tt.statuses != nil {
			_, enum := mustLookup(t, doc, append(msg, "headers", "properties", HeaderStatus, "enum")...)
			if got := sorted(yamlList(enum)); !slices.Equal(got, tt.statuses) {
				t.Errorf("%s: %s enum %v, Go constants %v", tt.message, HeaderStatus, got, tt.statuses)
			}
		}
	}
	if _, block := mustLookup(t, doc, "components", "messages"); !slices.Equal(sorted(yamlKeys(block)), sorted(names)) {
		t.Errorf("messages %v, tested %v", yamlKeys(block), names)
	}
	adv := []string{"components", "messages", "MaxDeliveriesAdvisory", "payload", "properties"}
	for prop, want := range map[string]string{"stream": StreamCommands, "consumer": ConsumerWorkers} {
		if got, _ := mustLookup(t, doc, append(adv, prop, "const")...); got != want {
			t.Errorf("MaxDeliveriesAdvisory: %s %q, want %q", prop, got, want)
		}
	}
	for name, file := range map[string]string{"Session": "./schema/session.schema.json", "Pending": "./schema/pending.schema.json"} {
		if ref, _ := mustLookup(t, doc, "components", "schemas", name, "$ref"); ref != file {
			t.Errorf("components.schemas.%s: $ref %q, want %q", name, ref, file)
		}
	}
}

// Every operation uses a channel and messages of that channel that exist.
func TestAsyncAPIOperations(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	_, ops := mustLookup(t, doc, "operations")
	actions := map[string][]string{}
	for _, op := range yamlKeys(ops) {
		action, _ := mustLookup(t, doc, "operations", op, "action")
		if action != "send" && action != "receive" {
			t.Errorf("operation %s: action %q", op, action)
		}
		ref, _ := mustLookup(t, doc, "operations", op, "channel", "$ref")
		channel, ok := strings.CutPrefix(ref, "#/channels/")
		if _, _, exists := yamlLookup(doc, "channels", channel); !ok || !exists {
			t.Errorf("operation %s: no channel %s", op, ref)
			continue
		}
		actions[channel] = append(actions[channel], action)
		_, msgs := mustLookup(t, doc, "operations", op, "messages")
		list, _ := msgs.([]any)
		if len(list) == 0 {
			t.Errorf("operation %s: no messages", op)
		}
		for _, l := range list {
			item, _ := l.(map[string]any)["$ref"].(string)
			m, ok := strings.CutPrefix(item, ref+"/messages/")
			if !ok {
				t.Errorf("operation %s: message %v is not one of %s", op, l, ref)
				continue
			}
			if _, _, exists := yamlLookup(doc, "channels", channel, "messages", m); !exists {
				t.Errorf("operation %s: channel %s has no message %s", op, channel, m)
			}
		}
	}
	for channel, want := range map[string][]string{
		"agentEvents": {"receive", "send"}, "confirmations": {"receive", "send"}, "sessionEvents": {"receive", "send"},
		"maxDeliveries": {"receive"},
	} {
		if got := sorted(actions[channel]); !slices.Equal(got, want) {
			t.Errorf("channel %s: operations %v, want %v", channel, got, want)
		}
	}
}

// The document follows the AsyncAPI 3.0 rules that matter to its readers
// and generators: info has a title and a version; every channel has an
// address and messages; every $ref, wherever it is, resolves (a local
// "#/..." pointer to a node of the document, a "./schema/..." file to an
// existing schema); every operation's messages are referenced through its
// channel.
func TestAsyncAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	for _, k := range []string{"title", "version"} {
		if v, _, _ := yamlLookup(doc, "info", k); v == "" {
			t.Errorf("info.%s is missing or not a scalar", k)
		}
	}
	_, channels := mustLookup(t, doc, "channels")
	for _, name := range yamlKeys(channels) {
		if a, _, _ := yamlLookup(doc, "channels", name, "address"); a == "" {
			t.Errorf("channel %s has no address", name)
		}
		if _, msgs, _ := yamlLookup(doc, "channels", name, "messages"); len(yamlKeys(msgs)) == 0 {
			t.Errorf("channel %s has no messages", name)
		}
	}
	refs := 0
	var walk func(node any, at string)
	walk = func(node any, at string) {
		switch n := node.(type) {
		case map[string]any:
			for k, v := range n {
				if k == "$ref" {
					refs++
					checkRef(t, doc, at, v)
					continue
				}
				walk(v, at+"/"+k)
			}
		case []any:
			for i, v := range n {
				walk(v, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc.tree, "#")
	if refs < 20 {
		t.Errorf("only %d $refs found: the walk is broken", refs)
	}
	if !strings.Contains(doc.text, BucketCalls) {
		t.Errorf("asyncapi.yaml does not document the bucket %s", BucketCalls)
	}
}

// checkRef fails unless ref, found at path at, resolves.
func checkRef(t *testing.T, doc asyncapiDoc, at string, ref any) {
	t.Helper()
	s, _ := ref.(string)
	switch {
	case strings.HasPrefix(s, "#/"):
		path := strings.Split(strings.TrimPrefix(s, "#/"), "/")
		for i, p := range path { // JSON pointer escapes
			path[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		}
		if _, node, ok := yamlLookup(doc, path...); !ok || node == nil {
			t.Errorf("%s: $ref %s does not resolve", at, s)
		}
	case strings.HasPrefix(s, "./schema/"):
		if _, err := os.Stat(s); err != nil {
			t.Errorf("%s: $ref %s: %v", at, s, err)
		}
	default:
		t.Errorf("%s: $ref %#v is neither a local pointer nor a schema file", at, ref)
	}
}
