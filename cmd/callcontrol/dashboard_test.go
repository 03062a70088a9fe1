package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// dashboard is deployments/grafana/callcontrol.json.
const dashboard = "../../deployments/grafana/callcontrol.json"

// dashboardFile holds what the test reads of a Grafana dashboard.
type dashboardFile struct {
	Templating struct {
		List []dashVar `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dashDatasource `json:"datasource"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

type dashDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashPanel struct {
	Title      string          `json:"title"`
	Datasource *dashDatasource `json:"datasource"`
	Targets    []struct {
		Datasource *dashDatasource `json:"datasource"`
		Expr       string          `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a row's
}

// dashScope are the variables every query selects with, by label.
var dashScope = map[string]string{"namespace": "$namespace", "job": "$role", "instance": "$instance"}

// The Grafana dashboard is valid JSON with the variables datasource,
// namespace, role and instance; every panel queries ${datasource}, every
// selector of every query is scoped by the other three variables and
// names a metric that a running worker or poller exports (or up), and the
// dashboard shows every callcontrol metric they export.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboardFile
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	rs := startRoles(t)
	exported := map[string]bool{"up": true} // made by Prometheus for every target
	for _, addr := range []string{rs.worker, rs.poller} {
		for name := range scrape(t, addr) {
			exported[name] = true
		}
	}

	checkDashVars(t, dash.Templating.List, exported)
	queried := map[string]bool{}
	n := 0
	for _, p := range flatPanels(dash.Panels) {
		if len(p.Targets) > 0 && !isDashDatasource(p.Datasource) {
			t.Errorf("%s: panel %q: datasource %s, want uid ${datasource}", dashboard, p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			n++
			if !isDashDatasource(tg.Datasource) {
				t.Errorf("%s: panel %q: a query's datasource %s, want uid ${datasource}", dashboard, p.Title, tg.Datasource)
			}
			for _, name := range checkDashQuery(t, p.Title, tg.Expr, true) {
				if !exported[name] && !exported[histogramFamily(name)] {
					t.Errorf("%s: panel %q queries %s, which no running worker or poller exports", dashboard, p.Title, name)
				}
				queried[histogramFamily(name)], queried[name] = true, true
			}
		}
	}
	if n < 10 {
		t.Fatalf("%s: %d queries, want at least 10", dashboard, n)
	}
	for _, name := range sortedNames(exported) {
		if strings.HasPrefix(name, "callcontrol_") && !queried[name] {
			t.Errorf("%s does not show %s", dashboard, name)
		}
	}
}

// checkDashVars checks the variables: datasource (Prometheus), and
// namespace, role (the job) and instance, each a label_values query of an
// exported metric on ${datasource}, scoped by the variables before it.
func checkDashVars(t *testing.T, vars []dashVar, exported map[string]bool) {
	t.Helper()
	byName := map[string]dashVar{}
	for _, v := range vars {
		byName[v.Name] = v
	}
	if ds := byName["datasource"]; ds.Type != "datasource" || varQuery(ds) != "prometheus" {
		t.Errorf("%s: variable datasource: type %q query %q, want datasource prometheus", dashboard, ds.Type, varQuery(ds))
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)
	for _, name := range []string{"namespace", "role", "instance"} {
		v, ok := byName[name]
		if !ok {
			t.Errorf("%s: no variable %s", dashboard, name)
			continue
		}
		m := labelValues.FindStringSubmatch(varQuery(v))
		wantLabel := map[string]string{"role": "job"}[name]
		if wantLabel == "" {
			wantLabel = name
		}
		if v.Type != "query" || !isDashDatasource(v.Datasource) || m == nil || m[2] != wantLabel {
			t.Errorf("%s: variable %s: want a query label_values(<selector>, %s) on ${datasource}, got type %q query %q",
				dashboard, name, wantLabel, v.Type, varQuery(v))
			continue
		}
		if v.IncludeAll && v.AllValue == "" {
			t.Errorf("%s: variable %s: All without allValue", dashboard, name)
		}
		for _, metric := range checkDashQuery(t, "variable "+name, m[1], false) {
			if !exported[metric] {
				t.Errorf("%s: variable %s queries %s, which no running worker or poller exports", dashboard, name, metric)
			}
		}
	}
}

func varQuery(v dashVar) string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

func isDashDatasource(ds *dashDatasource) bool { return ds != nil && ds.UID == "${datasource}" }

func (ds *dashDatasource) String() string {
	if ds == nil {
		return "none"
	}
	return "uid " + ds.UID
}

// checkDashQuery parses expr (Grafana's interval variables made
// durations) and returns the metric names it selects; scoped: every
// selector must carry dashScope's matchers.
func checkDashQuery(t *testing.T, where, expr string, scoped bool) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m").Replace(expr))
	if err != nil {
		t.Errorf("%s: %s: %v (query: %s)", dashboard, where, err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		names = append(names, vs.Name)
		for label, value := range dashScope {
			if scoped && !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
				return m.Name == label && m.Type == labels.MatchRegexp && m.Value == value
			}) {
				t.Errorf("%s: %s: %s lacks %s=~%q (query: %s)", dashboard, where, vs, label, value, expr)
			}
		}
		return nil
	})
	return names
}

// flatPanels returns panels and the panels of their rows.
func flatPanels(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		out = append(append(out, p), flatPanels(p.Panels)...)
	}
	return out
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

func sortedNames(set map[string]bool) []string {
	var names []string
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
