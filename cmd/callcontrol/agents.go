package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/admin"
)

// agentsHeader is the table's header line (the README shows it).
const agentsHeader = "AGENT\tSESSION\tPOLLER\tCALLS\tCALL\tPHASE\tPARTIES\tON CALL\tOBSERVED"

// printAgents renders the views as a table.
func printAgents(w io.Writer, views []admin.Agent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, agentsHeader)
	for _, v := range views {
		calls, call, phase, parties, onCall, observed := "-", "-", "-", "-", "-", "-"
		if v.State != nil {
			calls = strconv.Itoa(len(v.State.Calls))
			observed = "never (not vouched for)"
			if v.ObservedAgeMillis != nil {
				observed = formatAge(time.Duration(*v.ObservedAgeMillis)*time.Millisecond) + " ago"
			}
			if !v.State.Polling {
				observed += ", not polled since"
			}
		}
		if c := v.Call; c != nil {
			call, phase, parties = c.CallID, string(c.Phase), dash(strings.Join(c.Parties, ","))
			onCall = formatAge(time.Duration(v.OnCallMillis) * time.Millisecond)
		}
		session := v.Session
		if v.SessionReason != "" {
			session += " (" + v.SessionReason + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.AgentID, session, dash(v.Poller), calls, call, phase, parties, onCall, observed)
	}
	return tw.Flush()
}

// formatAge renders d as "850ms", "12.3s" or "4m05s".
func formatAge(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// runAgents lists the agents with their session, poller and current call.
func runAgents(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("agents", stdout)
	var (
		nf      natsFlags
		asJSON  bool
		agent   int
		timeout time.Duration
	)
	nf.register(s, defaultNATSURL)
	output := s.group(groupOutput)
	s.fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table (parties masked too)")
	output()
	s.fs.IntVar(&agent, "agent", 0, "only this agent ID")
	s.fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the command may take")
	if err := s.parse(args); err != nil {
		return err
	}
	if err := checkAgentFlag(agent, true); err != nil {
		return err
	}
	ctx, c, done, err := nf.client(ctx, "cli", timeout)
	if err != nil {
		return err
	}
	defer done()
	views, err := c.Agents(ctx)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	if agent != 0 {
		views = slices.DeleteFunc(views, func(v admin.Agent) bool { return v.AgentID != agent })
		if len(views) == 0 {
			return fmt.Errorf("agents: agent %d: no session and no call state", agent)
		}
	}
	if asJSON {
		return writeJSON(stdout, views)
	}
	return printAgents(stdout, views)
}
