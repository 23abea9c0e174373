package files

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/rewind-dr/rewind/internal/errs"
)

// pattern is a compiled glob over slash-separated paths. Each segment is a path.Match
// pattern; the segment "**" matches zero or more whole segments.
type pattern struct {
	src  string
	segs []string
}

// compilePattern compiles p. With anyDepth, a pattern that does not start with "/" may
// match at any depth (as if it began with "**/"): an exclude pattern "*.tmp" or "cache/x"
// matches below any directory, "/home/*/cache" only there. Without anyDepth the pattern is
// anchored at the root ("/" at its start is optional).
func compilePattern(op, p string, anyDepth bool) (pattern, error) {
	src := p
	p = strings.TrimSpace(p)
	if p == "" {
		return pattern{}, errs.Errorf(op, errs.Invalid, "empty pattern").WithHint("remove the empty pattern")
	}
	absolute := strings.HasPrefix(p, "/")
	var segs []string
	if anyDepth && !absolute {
		segs = append(segs, "**")
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." {
			continue
		}
		if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return pattern{}, errs.Errorf(op, errs.Invalid, "pattern %q: bad segment %q: %v", src, s, err).
				WithHint("check the brackets and backslashes of the pattern; use * ? [abc] and ** for any number of directories")
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return pattern{}, errs.Errorf(op, errs.Invalid, "pattern %q matches nothing", src).WithHint("give a pattern with at least one name")
	}
	return pattern{src: src, segs: segs}, nil
}

func compilePatterns(op string, ps []string, anyDepth bool) ([]pattern, error) {
	out := make([]pattern, 0, len(ps))
	for _, p := range ps {
		c, err := compilePattern(op, p, anyDepth)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// readPatternFile returns the patterns of file name: one per line, blank lines and lines
// starting with "#" ignored, surrounding spaces trimmed.
func readPatternFile(op, name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		kind := errs.Invalid
		if os.IsNotExist(err) {
			kind = errs.NotFound
		}
		return nil, errs.E(op, kind, fmt.Errorf("exclude file: %w", err)).WithHint("check the path given as exclude file")
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if _, err := compilePattern(op, s, true); err != nil {
			return nil, errs.E(op, errs.Invalid, fmt.Errorf("exclude file %s line %d: %w", name, line, err)).WithHint(errs.HintOf(err))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, errs.E(op, errs.Invalid, fmt.Errorf("exclude file %s: %w", name, err))
	}
	return out, nil
}

// splitPath splits a slash-separated path into its non-empty segments.
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// match reports whether the whole path (its segments) matches.
func (p pattern) match(segs []string) bool { return matchSegs(p.segs, segs) }

// matchPrefix reports whether segs could be a directory above a matching path (or is itself
// a match), so that it must be descended into.
func (p pattern) matchPrefix(segs []string) bool {
	ps := p.segs
	for len(segs) > 0 {
		if len(ps) == 0 {
			return false
		}
		if ps[0] == "**" {
			return true
		}
		if ok, _ := path.Match(ps[0], segs[0]); !ok {
			return false
		}
		ps, segs = ps[1:], segs[1:]
	}
	return true
}

func matchSegs(ps, segs []string) bool {
	for len(ps) > 0 {
		if ps[0] == "**" {
			ps = ps[1:]
			if len(ps) == 0 {
				return true
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegs(ps, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(ps[0], segs[0]); !ok {
			return false
		}
		ps, segs = ps[1:], segs[1:]
	}
	return len(segs) == 0
}

func matchAny(ps []pattern, segs []string) bool {
	for _, p := range ps {
		if p.match(segs) {
			return true
		}
	}
	return false
}
