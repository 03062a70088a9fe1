package main

import (
	"flag"
	"fmt"
	"io"
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
}

func newSettings(name string, out io.Writer) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	s := &settings{fs: fs, fields: map[string]string{}, secrets: map[string]bool{}, hidden: map[string]bool{}}
	fs.Usage = s.usage
	return s
}

// hide leaves the named flags out of the usage text (-h): they still work,
// from the command line and the environment, but are not offered (e.g.
// --skip-call-check, which exists only for callcontrol bench).
func (s *settings) hide(names ...string) {
	for _, n := range names {
		s.hidden[n] = true
	}
}

// usage is the flag package's usage text without the hidden flags.
func (s *settings) usage() {
	out := s.fs.Output()
	if s.fs.Name() == "" {
		fmt.Fprintf(out, "Usage:\n")
	} else {
		fmt.Fprintf(out, "Usage of %s:\n", s.fs.Name())
	}
	shown := flag.NewFlagSet(s.fs.Name(), flag.ContinueOnError)
	shown.SetOutput(out)
	s.fs.VisitAll(func(f *flag.Flag) {
		if !s.hidden[f.Name] {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue // Var takes the current value as the default
		}
	})
	shown.PrintDefaults()
}

// envName is the environment variable of flag name.
func envName(name string) string {
	return "CALLCONTROL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// field records that the flag called name sets the config field field.
func (s *settings) field(field, name string) { s.fields[field] = name }

// secret marks the named flags as secrets: errors and explain show "***"
// instead of their values.
func (s *settings) secret(names ...string) {
	for _, n := range names {
		s.secrets[n] = true
	}
}

// redact replaces the value of every secret flag in msg by "***".
func (s *settings) redact(msg string) string {
	for name := range s.secrets {
		if f := s.fs.Lookup(name); f != nil && f.Value.String() != "" {
			msg = strings.ReplaceAll(msg, f.Value.String(), "***")
		}
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
		return fmt.Errorf("invalid setting: %s", strings.Join(errs, "; "))
	}
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", s.fs.Arg(0))
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
