package worker

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/callcontrol/callcontrol/internal/topology"
	"go.yaml.in/yaml/v3"
)

// Every channel of events/asyncapi.yaml is stored: its address, with each
// {parameter} filled in, is a subject of a stream that topology.Provision creates.
// A channel documented but not provisioned would lose its messages.
func TestAsyncAPIChannelsProvisioned(t *testing.T) {
	data, err := os.ReadFile("../events/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Channels map[string]struct {
			Address string `yaml:"address"`
		} `yaml:"channels"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	if len(doc.Channels) == 0 {
		t.Fatal("asyncapi.yaml has no channels")
	}
	_, js := testenv.Connect(t, testenv.JetStream(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Provision(t, js, topology.Config{})
	var subjects []string
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "KV_") {
			subjects = append(subjects, info.Config.Subjects...)
		}
	}
	param := regexp.MustCompile(`\{[^}]*\}`)
	for name, ch := range doc.Channels {
		subject := param.ReplaceAllString(ch.Address, "x101")
		if !slices.ContainsFunc(subjects, func(filter string) bool { return subjectMatches(filter, subject) }) {
			t.Errorf("channel %s: %s (as %s) is in no provisioned stream (subjects %v)", name, ch.Address, subject, subjects)
		}
	}
}

// subjectMatches reports whether NATS subject filter (with * and >)
// matches subject.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s) || tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}
