package files

import "testing"

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern  string
		anyDepth bool
		path     string
		match    bool
		prefix   bool // matchPrefix: the path may lead to a match
	}{
		{"*.tmp", true, "/a/b/x.tmp", true, true},
		{"*.tmp", true, "/a/b/x.txt", false, true},
		{"/a/*/c", true, "/a/b/c", true, true},
		{"/a/*/c", true, "/x/a/b/c", false, false},
		{"cache/tmp", true, "/home/u/cache/tmp", true, true},
		{"**/node_modules", true, "/p/q/node_modules", true, true},
		{"**", false, "anything/at/all", true, true},
		{"etc/ssh", false, "etc", false, true},
		{"etc/ssh", false, "etc/ssh", true, true},
		{"etc/ssh", false, "etc/ssh/keys", false, false},
		{"etc/ssh", false, "usr/etc/ssh", false, false},
		{"/etc//ssh/", false, "etc/ssh", true, true},
		{"home/**/*.md", false, "home", false, true},
		{"home/**/*.md", false, "home/u/x/y.md", true, true},
		{"home/**/*.md", false, "home/y.md", true, true},
		{"home/**/*.md", false, "var", false, false},
		{"a/**/**/b", false, "a/b", true, true},
		{"[ab]?", false, "bz", true, true},
		{"\xff*", false, "\xff\xfe", true, true},
	}
	for _, c := range cases {
		p, err := compilePattern("test", c.pattern, c.anyDepth)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		segs := splitPath(c.path)
		if got := p.match(segs); got != c.match {
			t.Errorf("%q match %q = %v, want %v", c.pattern, c.path, got, c.match)
		}
		if got := p.matchPrefix(segs); got != c.prefix {
			t.Errorf("%q matchPrefix %q = %v, want %v", c.pattern, c.path, got, c.prefix)
		}
	}
	for _, bad := range []string{"", "  ", "/", "a/[b", "x\\"} {
		if _, err := compilePattern("test", bad, true); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func FuzzPattern(f *testing.F) {
	f.Add("home/**/*.md", "home/u/x/y.md")
	f.Add("*.tmp", "/a/b.tmp")
	f.Add("[a-", "a")
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := compilePattern("fuzz", pat, true)
		if err != nil {
			return
		}
		segs := splitPath(path)
		if p.match(segs) && !p.matchPrefix(segs) {
			t.Fatalf("%q matches %q but matchPrefix says it cannot", pat, path)
		}
	})
}
