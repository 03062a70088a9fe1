package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time by make bench (-ldflags -X main.version=...).
var version string

// vcsInfo is what the Go toolchain stamped about the source tree: the
// commit, its time and whether the tree had uncommitted changes. A build
// outside a git clone (a git worktree included: the toolchain looks for a
// .git directory) or with -buildvcs=false has none.
type vcsInfo struct {
	revision, time string
	modified       bool
}

func buildVCS(bi *debug.BuildInfo) vcsInfo {
	var v vcsInfo
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			v.revision = kv.Value
		case "vcs.time":
			v.time = kv.Value
		case "vcs.modified":
			v.modified = kv.Value == "true"
		}
	}
	return v
}

// buildVersion is the VCS revision the binary was built from, if known:
// 12 hex digits, +dirty for a modified tree (bench's reports).
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := buildVCS(bi)
		rev := v.revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && v.modified {
			rev += "+dirty"
		}
		if rev != "" {
			return rev
		}
	}
	return "unknown"
}

// runVersion prints the module version, the VCS revision and the Go
// version the binary was built with (`callcontrol version`, `--version`).
func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	s := newSettings("version", stdout)
	if err := s.parse(args); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	fmt.Fprint(stdout, versionText(bi, version))
	return nil
}

// versionText renders bi; stamped is the -X main.version value, if any.
func versionText(bi *debug.BuildInfo, stamped string) string {
	v := buildVCS(bi)
	rev := "unknown (no VCS information in the build: go run, -buildvcs=false, or built outside a git clone)"
	if v.revision != "" {
		rev = v.revision
		if v.modified {
			rev += "+dirty"
		}
		if v.time != "" {
			rev += " (committed " + v.time + ")"
		}
	}
	return fmt.Sprintf("callcontrol %s\nmodule:   %s\nrevision: %s\ngo:       %s %s/%s\n",
		cmp.Or(stamped, bi.Main.Version, "(devel)"), cmp.Or(bi.Main.Path, "github.com/callcontrol/callcontrol"),
		rev, cmp.Or(bi.GoVersion, runtime.Version()), runtime.GOOS, runtime.GOARCH)
}
