package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
	"strings"
)

// settings is a flag set whose every flag can also be given as an
// environment variable CALLCONTROL_<FLAG_NAME> (dashes become underscores);
// a flag on the command line wins. Each flag may name the config field it
// sets, so that a validation error about the field names the setting.
type settings struct {
	fs     *flag.FlagSet
	fields map[string]string // config field name -> flag name
	// secrets are the flags whose values are never shown (see redact).
	secrets map[string]bool
	// hidden are the flags the usage text leaves out (see hide).
	hidden map[string]bool
	// groups are the usage headings of the flags (see group); a flag
	// without one is a behaviour flag.
	groups map[string]flagGroup
	// out is where -h prints the usage text.
	out io.Writer
	// about is the command the flags belong to, for the usage text.
	about command
}

// newSettings returns the settings of the command called name ("dlq
// list" for a subcommand); its usage text goes to out. The flag package
// itself prints nothing: parse reports a bad flag as an error.
func newSettings(name string, out io.Writer) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	about, _ := lookupCommand(name)
	about.name = name
	return &settings{fs: fs, fields: map[string]string{}, secrets: map[string]bool{}, hidden: map[string]bool{},
		groups: map[string]flagGroup{}, out: out, about: about}
}

// flagGroup is a heading of a command's usage text.
type flagGroup string

const (
	groupConnection flagGroup = "connection" // NATS, the gateway, listeners
	groupBehaviour  flagGroup = "behaviour"  // what the command does
	groupOutput     flagGroup = "output"     // logs, spans, metrics, what is printed or written
)

// group puts the flags registered from now until the returned func is
// called under heading g, e.g. defer s.group(groupConnection)() at the top
// of a function that registers connection flags.
func (s *settings) group(g flagGroup) (done func()) {
	before := map[string]bool{}
	s.fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	return func() {
		s.fs.VisitAll(func(f *flag.Flag) {
			if !before[f.Name] {
				s.groups[f.Name] = g
			}
		})
	}
}

// hide leaves the named flags out of the usage text (-h): they still work,
// from the command line and the environment, but are not offered (e.g.
// --skip-call-check, which exists only for callcontrol bench).
func (s *settings) hide(names ...string) {
	for _, n := range names {
		s.hidden[n] = true
	}
}

// usage writes the usage text to s.out: the synopsis, what the command
// does and its flags under their headings, hidden flags left out.
func (s *settings) usage() {
	w := s.out
	fmt.Fprintf(w, "usage: callcontrol %s [flags]", s.about.name)
	if s.about.args != "" {
		fmt.Fprintf(w, " %s", s.about.args)
	}
	fmt.Fprintln(w)
	if s.about.summary != "" {
		fmt.Fprintf(w, "\n%s\n", s.about.summary)
	}
	first := "" // the first flag shown, for the example of the last line
	for _, g := range []flagGroup{groupConnection, groupBehaviour, groupOutput} {
		heading := false
		s.fs.VisitAll(func(f *flag.Flag) {
			if s.hidden[f.Name] || cmp.Or(s.groups[f.Name], groupBehaviour) != g {
				return
			}
			if !heading {
				fmt.Fprintf(w, "\n%s flags:\n", g)
				heading = true
			}
			first = cmp.Or(first, f.Name)
			fmt.Fprint(w, flagUsage(f))
		})
	}
	if first != "" {
		fmt.Fprintf(w, "\nEvery flag can also be set as its environment variable (--%s as %s); the command line wins.\n",
			first, envName(first))
	}
}

// flagUsage is one flag's entry in the usage text, as the flag package
// prints it but with the two dashes the README and the errors use.
func flagUsage(f *flag.Flag) string {
	typ, text := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if typ != "" {
		line += " " + typ
	}
	line += "\n    \t" + strings.ReplaceAll(text, "\n", "\n    \t")
	switch {
	case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false" || f.DefValue == "0s":
	case typ == "string":
		line += fmt.Sprintf(" (default %q)", f.DefValue)
	default:
		line += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	return line + "\n"
}

// envName is the environment variable of flag name.
func envName(name string) string {
	return "CALLCONTROL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// fieldFlags records, for each config field in m, the flag that sets it
// (a field recorded before is renamed).
func (s *settings) fieldFlags(m map[string]string) { maps.Copy(s.fields, m) }

// secret marks the named flags as secrets: errors and explain show "***"
// instead of their values.
func (s *settings) secret(names ...string) {
	for _, n := range names {
		s.secrets[n] = true
	}
}

// secretValues returns the values of the secret flags that are set.
func (s *settings) secretValues() []string {
	var out []string
	for name := range s.secrets {
		if f := s.fs.Lookup(name); f != nil && f.Value.String() != "" {
			out = append(out, f.Value.String())
		}
	}
	return out
}

// redact replaces the value of every secret flag in msg by "***".
func (s *settings) redact(msg string) string {
	for _, v := range s.secretValues() {
		msg = strings.ReplaceAll(msg, v, "***")
	}
	return msg
}

// positive fails unless each named numeric flag is above zero: in the
// configs zero means "default", so an explicit 0 must not slip through.
func (s *settings) positive(names ...string) error {
	for _, name := range names {
		f := s.fs.Lookup(name)
		if v := f.Value.String(); strings.HasPrefix(v, "-") || strings.Trim(v, "0.smh") == "" {
			return fmt.Errorf("invalid configuration: --%s (%s): must be greater than zero, got %s", name, envName(name), v)
		}
	}
	return nil
}

// parse reads the environment, then args. An error names the setting.
func (s *settings) parse(args []string) error {
	var errs []string
	s.fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				shown := fmt.Sprintf("%q", v)
				if s.secrets[f.Name] {
					shown = "***"
				}
				errs = append(errs, fmt.Sprintf("%s=%s: %v", envName(f.Name), shown, err))
			}
		}
	})
	if len(errs) > 0 {
		// -h still answers: the usage is how to find the right value.
		if err := s.parseFlags(args); errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("invalid setting: %s", strings.Join(errs, "; "))
	}
	if err := s.parseFlags(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q (run 'callcontrol %s -h')", s.fs.Name(), s.fs.Arg(0), s.fs.Name())}
	}
	return nil
}

// parseFlags parses args, without the environment. -h or --help prints
// the usage text and returns flag.ErrHelp; a flag that does not exist or
// does not parse is a usage error.
func (s *settings) parseFlags(args []string) error {
	err := s.fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		s.usage()
		return err
	case err != nil:
		return usageError{fmt.Errorf("%s: %w (run 'callcontrol %s -h')", s.fs.Name(), err, s.fs.Name())}
	}
	return nil
}

// explain rewrites a config validation error so that it names the flag
// and the environment variable of each field it mentions.
func (s *settings) explain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	keys := make([]string, 0, len(s.fields))
	for k := range s.fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, field := range keys {
		name := s.fields[field]
		msg = strings.ReplaceAll(msg, " "+field+":", fmt.Sprintf(" --%s (%s):", name, envName(name)))
	}
	return fmt.Errorf("invalid configuration: %s", s.redact(msg))
}
