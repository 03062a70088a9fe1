package events

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// asyncapi.yaml cannot be parsed without a YAML library. These tests read
// it with yamlLookup, which understands the block style the file is written
// in (nested mappings, lists of scalars, quoted scalars, block scalars).

func loadAsyncAPI(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if !strings.HasPrefix(doc, "asyncapi: 3.0.0\n") {
		t.Fatal("asyncapi.yaml does not start with asyncapi: 3.0.0")
	}
	if strings.Contains(doc, "\t") {
		t.Fatal("asyncapi.yaml contains a tab")
	}
	return doc
}

// yamlLookup finds the mapping entry at path (a key at each level) and
// returns its inline scalar value, unquoted, and the lines of its block.
func yamlLookup(doc string, path ...string) (value string, block []string, ok bool) {
	lines := strings.Split(doc, "\n")
	lo, hi := 0, len(lines)
	for _, key := range path {
		found, child := false, -1
		for i := lo; i < hi && !found; i++ {
			trimmed := strings.TrimLeft(lines[i], " ")
			if trimmed == "" || trimmed[0] == '#' {
				continue
			}
			ind := len(lines[i]) - len(trimmed)
			if child < 0 {
				child = ind
			}
			k, v, isKey := strings.Cut(trimmed, ":")
			if ind != child || !isKey || k != key || v != "" && v[0] != ' ' {
				continue
			}
			j := i + 1
			for j < hi && (strings.TrimSpace(lines[j]) == "" || len(lines[j])-len(strings.TrimLeft(lines[j], " ")) > ind) {
				j++
			}
			for j > i+1 && strings.TrimSpace(lines[j-1]) == "" {
				j--
			}
			value, lo, hi, found = yamlScalar(strings.TrimSpace(v)), i+1, j, true
		}
		if !found {
			return "", nil, false
		}
	}
	return value, lines[lo:hi], true
}

func yamlScalar(s string) string {
	switch {
	case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	case len(s) >= 2 && s[0] == '"':
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// yamlList returns the scalar items of a block that is a list.
func yamlList(block []string) []string {
	var items []string
	for _, l := range block {
		if item, ok := strings.CutPrefix(strings.TrimSpace(l), "- "); ok {
			items = append(items, yamlScalar(item))
		}
	}
	return items
}

// yamlKeys returns the keys of a block that is a mapping.
func yamlKeys(block []string) []string {
	var keys []string
	child := -1
	for _, l := range block {
		trimmed := strings.TrimLeft(l, " ")
		if trimmed == "" {
			continue
		}
		if ind := len(l) - len(trimmed); child < 0 {
			child = ind
		} else if ind != child {
			continue
		}
		if k, _, ok := strings.Cut(trimmed, ":"); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

func mustLookup(t *testing.T, doc string, path ...string) (string, []string) {
	t.Helper()
	v, block, ok := yamlLookup(doc, path...)
	if !ok {
		t.Fatalf("asyncapi.yaml has no %s", strings.Join(path, "."))
	}
	return v, block
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
		if !strings.Contains(doc, value) {
			t.Errorf("asyncapi.yaml does not mention %s (%q)", name, value)
		}
	}
	files, err := filepath.Glob("schema/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, m := range regexp.MustCompile(`\$ref: '(\./schema/[^']*)'`).FindAllStringSubmatch(doc, -1) {
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
			"^" + idPattern + "|^replay-" + strings.TrimSuffix(idPattern, "$") + "-[0-9]{1,20}$", nil},
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
		for _, l := range msgs {
			item, _ := strings.CutPrefix(strings.TrimSpace(l), "- $ref: ")
			m, ok := strings.CutPrefix(yamlScalar(item), ref+"/messages/")
			if !ok {
				t.Errorf("operation %s: message %s is not one of %s", op, strings.TrimSpace(l), ref)
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
