package deployments

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/callcontrol/callcontrol/metrics"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	// alertRules is the rule file; k8s/prometheusrule.yaml holds its groups.
	alertRules = "prometheus/alerts.yaml"
	// runbooks is where each alert's runbook_url points, at the heading
	// named after the alert.
	runbooks    = "README.md"
	runbookBase = "https://github.com/callcontrol/callcontrol/blob/main/deployments/README.md#"
)

// roleJobs are the scrape jobs of the roles (the ServiceMonitor's relabeling).
var roleJobs = []string{"callcontrol-worker", "callcontrol-poller"}

// readAlertRules parses alertRules as Prometheus loads a rule file: every
// expression parsed, every template checked.
func readAlertRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	rgs, errs := rulefmt.ParseFile(alertRules, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
	for _, err := range errs {
		t.Error(err)
	}
	if rgs == nil || len(rgs.Groups) == 0 {
		t.Fatalf("%s: no groups", alertRules)
	}
	var rules []rulefmt.Rule
	for _, g := range rgs.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// Every rule of alerts.yaml is an alert with a for, a severity of
// critical or warning, a summary, a description and a runbook_url that
// points at a heading of deployments/README.md.
func TestAlertRulesWellFormed(t *testing.T) {
	anchors := headingAnchors(t, runbooks)
	for _, r := range readAlertRules(t) {
		if r.Alert == "" {
			t.Errorf("%s: rule %q is not an alert", alertRules, r.Record)
			continue
		}
		if r.For <= 0 {
			t.Errorf("%s: alert %s: no for", alertRules, r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: alert %s: labels.severity %q, want critical or warning", alertRules, r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: alert %s: no annotations.%s", alertRules, r.Alert, a)
			}
		}
		want := runbookBase + strings.ToLower(r.Alert)
		if url := r.Annotations["runbook_url"]; url != want {
			t.Errorf("%s: alert %s: runbook_url %q, want %q", alertRules, r.Alert, url, want)
		}
		if !anchors[strings.ToLower(r.Alert)] {
			t.Errorf("%s: alert %s: %s has no heading %q (the runbook_url's anchor)", alertRules, r.Alert, runbooks, r.Alert)
		}
	}
}

// Every metric the rules select is one the roles export (metrics.Names,
// and up, which Prometheus makes per target), selected with a job of a
// role.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	names, err := metrics.Names()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{"up": true}
	for _, n := range names {
		exported[n] = true
	}
	p := parser.NewParser(parser.Options{})
	for _, r := range readAlertRules(t) {
		expr, err := p.ParseExpr(r.Expr)
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
			continue
		}
		selectors := 0
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			selectors++
			if name := vs.Name; !exported[name] && !exported[histogramFamily(name)] {
				t.Errorf("alert %s selects %s, which no role exports", r.Alert, name)
			}
			if !selectsRoleJob(vs.LabelMatchers) {
				t.Errorf("alert %s: %s has no job matcher selecting only %v", r.Alert, vs, roleJobs)
			}
			return nil
		})
		if selectors == 0 {
			t.Errorf("alert %s selects no metric", r.Alert)
		}
	}
}

// histogramFamily returns name less a histogram series' suffix.
func histogramFamily(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, s); ok {
			return f
		}
	}
	return name
}

// selectsRoleJob reports whether ms has a job matcher that selects a
// role's job and no other job.
func selectsRoleJob(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name == "job" {
			return slices.ContainsFunc(roleJobs, m.Matches) && !m.Matches("node-exporter") && !m.Matches("")
		}
	}
	return false
}

// headingAnchors returns the anchors GitHub gives the Markdown headings
// of file: lower case, spaces as '-', other punctuation dropped.
func headingAnchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	sc := bufio.NewScanner(f)
	heading := regexp.MustCompile(`^#{1,6} +(.+?) *$`)
	for sc.Scan() {
		if m := heading.FindStringSubmatch(sc.Text()); m != nil {
			anchors[strings.Map(func(r rune) rune {
				switch {
				case r == ' ':
					return '-'
				case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
					return unicode.ToLower(r)
				}
				return -1
			}, m[1])] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return anchors
}

// Every alert has a test in alerts_test.yaml in which it fires and, at a
// later eval_time of the same test, no longer does.
func TestAlertRulesTested(t *testing.T) {
	tests := readRuleTests(t)
	fires, resolves := map[string]bool{}, map[string]bool{}
	for _, tg := range tests.Tests {
		firstFired := map[string]time.Duration{}
		for _, at := range tg.AlertRuleTests {
			d := duration(t, "eval_time", at.EvalTime, 0)
			if prev, ok := firstFired[at.Alertname]; len(at.ExpAlerts) > 0 && (!ok || d < prev) {
				firstFired[at.Alertname] = d
				fires[at.Alertname] = true
			}
		}
		for _, at := range tg.AlertRuleTests {
			d := duration(t, "eval_time", at.EvalTime, 0)
			if first, ok := firstFired[at.Alertname]; ok && len(at.ExpAlerts) == 0 && d > first {
				resolves[at.Alertname] = true
			}
		}
	}
	for _, r := range readAlertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no test in which %s fires", alertTests, r.Alert)
		}
		if !resolves[r.Alert] {
			t.Errorf("%s: no test in which %s fires and then, at a later eval_time, does not", alertTests, r.Alert)
		}
	}
}

// k8s/prometheusrule.yaml's spec.groups are alerts.yaml's groups, exactly.
// To update it, keep its header and metadata and indent alerts.yaml's
// groups under spec by two spaces.
func TestAlertsInPrometheusRule(t *testing.T) {
	var rule struct {
		Spec struct {
			Groups any `json:"groups"`
		} `json:"spec"`
	}
	var file struct {
		Groups any `json:"groups"`
	}
	decodeYAML(t, k8sDir+"/prometheusrule.yaml", &rule)
	decodeYAML(t, alertRules, &file)
	if file.Groups == nil || !reflect.DeepEqual(rule.Spec.Groups, file.Groups) {
		t.Errorf("%s/prometheusrule.yaml: spec.groups differ from the groups of %s", k8sDir, alertRules)
	}
}

// decodeYAML decodes file into v through JSON, as kubectl reads it.
func decodeYAML(t *testing.T, file string, v any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := json.Unmarshal(js, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
