package backends

import (
	"fmt"
	"regexp"
	"strings"
)

// AllowList says which backend services the controller may modify. Each entry is a regular
// expression that must match in full (so a plain name matches only itself): an entry without
// "/" is matched against the backend service's name, an entry with "/" against "global/NAME" for
// a global and "REGION/NAME" for a regional backend service. The zero AllowList allows nothing.
type AllowList struct {
	entries []allowEntry
}

type allowEntry struct {
	scoped bool
	re     *regexp.Regexp
	text   string
}

// ParseAllowList compiles the entries (empty ones are skipped).
func ParseAllowList(entries []string) (AllowList, error) {
	var out AllowList
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		re, err := regexp.Compile(`^(?:` + e + `)$`)
		if err != nil {
			return AllowList{}, fmt.Errorf("backend service allow-list entry %q is not a valid regular expression: %w", e, err)
		}
		out.entries = append(out.entries, allowEntry{scoped: strings.Contains(e, "/"), re: re, text: e})
	}
	return out, nil
}

// MustAllowList is ParseAllowList for entries known to be valid (tests, constants).
func MustAllowList(entries ...string) AllowList {
	a, err := ParseAllowList(entries)
	if err != nil {
		panic(err)
	}
	return a
}

// Allows reports whether the backend service name in region ("" = global) may be modified.
func (a AllowList) Allows(region, name string) bool {
	scope := "global"
	if region != "" {
		scope = region
	}
	for _, e := range a.entries {
		subject := name
		if e.scoped {
			subject = scope + "/" + name
		}
		if e.re.MatchString(subject) {
			return true
		}
	}
	return false
}

// Empty reports whether nothing is allowed.
func (a AllowList) Empty() bool { return len(a.entries) == 0 }

// String renders the entries comma-separated.
func (a AllowList) String() string {
	texts := make([]string, len(a.entries))
	for i, e := range a.entries {
		texts[i] = e.text
	}
	return strings.Join(texts, ",")
}
