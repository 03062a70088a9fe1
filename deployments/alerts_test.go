package deployments

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// alertTests is the rules' unit test file, in the format of
// `promtool test rules`.
const alertTests = "prometheus/alerts_test.yaml"

// ruleTestFile is a promtool rule unit test file: the fields this
// repository uses. An unknown field (promql_expr_test, external_labels…)
// fails the decode rather than being skipped; add it here first.
type ruleTestFile struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval string          `yaml:"evaluation_interval"`
	Tests              []ruleTestGroup `yaml:"tests"`
}

// ruleTestGroup is one test: series loaded at interval, alerts expected
// at eval times.
type ruleTestGroup struct {
	Name        string `yaml:"name"`
	Interval    string `yaml:"interval"`
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []alertRuleTest `yaml:"alert_rule_test"`
}

// alertRuleTest names the alerts of one rule expected to fire at
// eval_time (none: exp_alerts empty), with their labels (less alertname)
// and every annotation.
type alertRuleTest struct {
	EvalTime  string `yaml:"eval_time"`
	Alertname string `yaml:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	} `yaml:"exp_alerts"`
}

// readRuleTests decodes alertTests strictly and resolves its rule files
// against its directory.
func readRuleTests(t *testing.T) ruleTestFile {
	t.Helper()
	raw, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f ruleTestFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertTests, err)
	}
	if len(f.RuleFiles) == 0 || len(f.Tests) == 0 {
		t.Fatalf("%s: want rule_files and tests", alertTests)
	}
	for i, rf := range f.RuleFiles {
		f.RuleFiles[i] = filepath.Join(filepath.Dir(alertTests), rf)
	}
	return f
}

// duration parses a promtool duration ("5m", "1h30m"); "" is def.
func duration(t *testing.T, field, s string, def time.Duration) time.Duration {
	t.Helper()
	if s == "" {
		return def
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %s: %v", alertTests, field, err)
	}
	return time.Duration(d)
}

// Each test of prometheus/alerts_test.yaml passes, evaluated as promtool
// does it (cmd/promtool/unittest.go): the input series loaded with
// promqltest's series language, the rule groups evaluated with
// rules.Group.Eval at every evaluation_interval from time 0, and the
// firing alerts of a rule compared at each eval_time, labels and
// annotations exactly.
func TestAlertRuleUnitTests(t *testing.T) {
	f := readRuleTests(t)
	every := duration(t, "evaluation_interval", f.EvaluationInterval, time.Minute)
	for i, tg := range f.Tests {
		name := tg.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i)
		}
		t.Run(name, func(t *testing.T) {
			for _, err := range runRuleTest(t, tg, every, f.RuleFiles) {
				t.Error(err)
			}
		})
	}
}

// runRuleTest runs one test group and returns its failures.
func runRuleTest(t *testing.T, tg ruleTestGroup, every time.Duration, ruleFiles []string) []error {
	interval := duration(t, "interval", tg.Interval, every)
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", model.Duration(interval))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		return []error{fmt.Errorf("input_series: %w", err)}
	}
	defer suite.Close()
	suite.SubqueryInterval = every

	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
	})
	groupsByName, errs := m.LoadGroups(interval, labels.EmptyLabels(), "", nil, false, ruleFiles...)
	if errs != nil {
		return errs
	}
	groups := make([]*rules.Group, 0, len(groupsByName))
	for _, g := range groupsByName {
		groups = append(groups, g)
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // as if the for state had been restored: alerts may fire
			}
		}
	}
	slices.SortFunc(groups, func(a, b *rules.Group) int { return strings.Compare(a.Name(), b.Name()) })

	checks := map[time.Duration][]alertRuleTest{}
	var last time.Duration
	for _, at := range tg.AlertRuleTests {
		if at.Alertname == "" {
			return []error{fmt.Errorf("alert_rule_test at %s: no alertname", at.EvalTime)}
		}
		d := duration(t, "eval_time", at.EvalTime, 0)
		checks[d] = append(checks[d], at)
		last = max(last, d)
	}
	start := time.Unix(0, 0).UTC()
	var failed []error
	for off := time.Duration(0); off <= last; off += every {
		ts := start.Add(off)
		var evalErr error
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErr = err
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						evalErr = fmt.Errorf("rule %s at %s: %w", r.Name(), off, r.LastError())
					}
				}
			}
		})
		if evalErr != nil {
			return append(failed, evalErr)
		}
		// An eval_time between two evaluations is checked against the
		// earlier one, as promtool does.
		for d, ats := range checks {
			if d >= off && d < off+every {
				for _, at := range ats {
					failed = append(failed, compareAlerts(groups, at)...)
				}
			}
		}
	}
	return failed
}

// compareAlerts compares the firing alerts of rule at.Alertname with
// at's expectation.
func compareAlerts(groups []*rules.Group, at alertRuleTest) []error {
	var got, want []string
	found := false
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != at.Alertname {
				continue
			}
			found = true
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, a.Labels.String()+" "+a.Annotations.String())
				}
			}
		}
	}
	if !found {
		return []error{fmt.Errorf("alertname %s: no such alerting rule", at.Alertname)}
	}
	for _, e := range at.ExpAlerts {
		l := labels.FromMap(e.ExpLabels)
		l = labels.NewBuilder(l).Set(labels.AlertName, at.Alertname).Labels()
		want = append(want, l.String()+" "+labels.FromMap(e.ExpAnnotations).String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return []error{fmt.Errorf("alertname %s at %s:\n  want %s\n  got  %s", at.Alertname, at.EvalTime,
			strings.Join(want, "\n       "), strings.Join(got, "\n       "))}
	}
	return nil
}
