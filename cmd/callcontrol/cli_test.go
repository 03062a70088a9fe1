package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// Every command of the registry, subcommands included, answers -h,
// --help and `help <command>` with its usage on stdout, naming it, and
// exit status 0; nothing goes to stderr. A client command does not offer
// the roles' --replicas, which the roles do offer. The table is the
// registry itself, so a new command cannot be left out.
func TestHelpEveryCommand(t *testing.T) {
	var errOut bytes.Buffer
	stderr = &errOut
	t.Cleanup(func() { stderr = os.Stderr })
	type entry struct {
		name  string // as typed: "dlq list"
		group commandGroup
	}
	var all []entry
	for _, c := range commandList() {
		all = append(all, entry{c.name, c.group})
		for _, s := range c.subs {
			all = append(all, entry{c.name + " " + s.name, c.group})
		}
	}
	if len(all) < 17 {
		t.Fatalf("registry has %d commands and subcommands, want at least 17", len(all))
	}
	for _, c := range all {
		words := strings.Fields(c.name)
		for _, args := range [][]string{slices.Concat(words, []string{"-h"}), slices.Concat(words, []string{"--help"}), slices.Concat([]string{"help"}, words)} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				errOut.Reset()
				var out bytes.Buffer
				if code := exitCode(run(context.Background(), args, &out), &errOut); code != 0 {
					t.Fatalf("exit status %d, want 0; stderr: %s", code, errOut.String())
				}
				usage := out.String()
				if !strings.Contains(usage, "callcontrol "+c.name) {
					t.Fatalf("usage does not name %q:\n%s", c.name, usage)
				}
				if errOut.Len() > 0 {
					t.Errorf("stderr: %s", errOut.String())
				}
				replicas := strings.Contains(usage, "--replicas")
				if c.group == groupClient && replicas {
					t.Errorf("client command %s offers --replicas:\n%s", c.name, usage)
				}
				if (c.name == "worker" || c.name == "poller") && !replicas {
					t.Errorf("role %s does not offer --replicas:\n%s", c.name, usage)
				}
			})
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out bytes.Buffer
		if code := exitCode(run(context.Background(), args, &out), &errOut); code != 0 {
			t.Fatalf("%v: exit status %d, want 0", args, code)
		}
		for _, c := range commandList() {
			if !c.hidden && !strings.Contains(out.String(), "\n  "+c.name+" ") {
				t.Errorf("%v: the usage text does not list %s:\n%s", args, c.name, out.String())
			}
		}
	}
}

// The top-level usage lists the commands under their headings, in the
// registry's groups.
func TestTopUsageGroups(t *testing.T) {
	u := topUsage()
	heading := map[commandGroup]int{}
	for _, g := range []commandGroup{groupRoles, groupClient, groupMaintenance} {
		heading[g] = strings.Index(u, "\n"+g.String()+":\n")
		if heading[g] < 0 {
			t.Fatalf("no heading %q:\n%s", g, u)
		}
	}
	for _, c := range commandList() {
		at := strings.Index(u, "\n  "+c.name+" ")
		if c.hidden != (at < 0) {
			t.Errorf("%s: listed at %d, hidden %v", c.name, at, c.hidden)
			continue
		}
		next := len(u)
		for _, h := range heading {
			if h > heading[c.group] && h < next {
				next = h
			}
		}
		if !c.hidden && (at < heading[c.group] || at > next) {
			t.Errorf("%s is not under %q:\n%s", c.name, c.group, u)
		}
	}
}

// A command line that cannot be run as given exits 2, an error of the
// command 1, help 0.
func TestExitCodes(t *testing.T) {
	var errOut bytes.Buffer
	stderr = &errOut
	t.Cleanup(func() { stderr = os.Stderr })
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"status", "--bogus"}, 2},
		{[]string{"disconnect", "--agent", "101", "stray"}, 2},
		{[]string{"dlq"}, 2},
		{[]string{"dlq", "purge"}, 2},
		{[]string{"worker", "--concurrency", "many"}, 2},
		{[]string{"worker"}, 1}, // no --gateway-url
		{[]string{"help", "worker"}, 0},
		{[]string{"version"}, 0},
	} {
		var out bytes.Buffer
		if got := exitCode(run(context.Background(), c.args, &out), &errOut); got != c.want {
			t.Errorf("%v: exit status %d, want %d; stderr: %s", c.args, got, c.want, errOut.String())
		}
	}
}

// version and --version print the same text: the module version, the
// revision and the Go version of the running binary.
func TestVersionCommand(t *testing.T) {
	var a, b bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &a); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"--version"}, &b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || !strings.Contains(a.String(), runtime.Version()) || !strings.HasPrefix(a.String(), "callcontrol ") {
		t.Fatalf("version:\n%s--version:\n%s", a.String(), b.String())
	}
}

func TestVersionText(t *testing.T) {
	mod := debug.Module{Path: "github.com/callcontrol/callcontrol", Version: "v0.0.0-20260101000000-0123456789ab+dirty"}
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-01T00:00:00Z"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		bi       debug.BuildInfo
		stamped  string
		want     []string
		mustNot  string
		describe string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: mod, Settings: vcs("true")}, "",
			[]string{"callcontrol v0.0.0-20260101000000-0123456789ab+dirty\n", "module:   github.com/callcontrol/callcontrol\n",
				"revision: 0123456789abcdef0123456789abcdef01234567+dirty (committed 2026-01-01T00:00:00Z)\n", "go:       go1.26.8 "}, "", "modified tree"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: mod, Settings: vcs("false")}, "",
			[]string{"revision: 0123456789abcdef0123456789abcdef01234567 (committed"}, "01234567+dirty", "clean tree"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: mod.Path, Version: "(devel)"}}, "",
			[]string{"callcontrol (devel)\n", "revision: unknown (no VCS information"}, "+dirty", "no VCS stamp"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: mod}, "v1.2.3", []string{"callcontrol v1.2.3\n"}, "", "-X main.version"},
	} {
		got := versionText(&c.bi, c.stamped)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: want %q in:\n%s", c.describe, w, got)
			}
		}
		if c.mustNot != "" && strings.Contains(got, c.mustNot) {
			t.Errorf("%s: %q in:\n%s", c.describe, c.mustNot, got)
		}
	}
}

// A binary built in a git checkout says which commit it is, with +dirty
// once a tracked file is changed, as the toolchain stamped it. The build
// is of this tree's files, committed to a repository of the test's own:
// the toolchain stamps only a build in a .git directory, which a git
// worktree does not have, and a clone would hold HEAD, not this code.
func TestVersionOfGitBuild(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	files, err := exec.Command("git", "-C", "../..", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted, not yet committed
		}
		if err == nil {
			err = os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "--no-verify", "-m", "test")
	head := git("rev-parse", "HEAD")
	version := func() string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "callcontrol")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/callcontrol")
		build.Dir, build.Env = dir, append(os.Environ(), "GOFLAGS=")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("callcontrol --version: %v", err)
		}
		return string(out)
	}
	if v := version(); !strings.Contains(v, "revision: "+head+" (committed ") || !strings.HasPrefix(v, "callcontrol v0.0.0-") {
		t.Fatalf("clean tree at %s:\n%s", head, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := version(); !strings.Contains(v, "revision: "+head+"+dirty (committed ") || !strings.Contains(v, "+dirty\nmodule:") {
		t.Fatalf("changed tree at %s:\n%s", head, v)
	}
}
