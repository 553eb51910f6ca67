package negbinding

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// AllowList says which NEG names the bindings of each namespace may bind (--negbinding-allow).
// Each entry is NAMESPACE=REGEX: the regular expression must match the NEG name in full, and
// NAMESPACE is a namespace or "*" for every namespace. The zero AllowList allows every NEG in
// every namespace: the binding object itself is the permission (Kubernetes RBAC decides who may
// create bindings where), and every other refusal rule applies whatever the list says.
type AllowList struct {
	entries []allowEntry
}

type allowEntry struct {
	namespace string // "*" = any
	re        *regexp.Regexp
	text      string
}

// ParseAllowList parses comma-separated NAMESPACE=REGEX entries (empty entries are skipped).
func ParseAllowList(s string) (AllowList, error) {
	var out AllowList
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		ns, expr, ok := strings.Cut(e, "=")
		ns, expr = strings.TrimSpace(ns), strings.TrimSpace(expr)
		if !ok || ns == "" || expr == "" {
			return AllowList{}, fmt.Errorf("entry %q is not NAMESPACE=REGEX", e)
		}
		if ns != "*" && len(validation.IsDNS1123Label(ns)) > 0 {
			return AllowList{}, fmt.Errorf("entry %q: %q is not a namespace name or *", e, ns)
		}
		re, err := regexp.Compile(`^(?:` + expr + `)$`)
		if err != nil {
			return AllowList{}, fmt.Errorf("entry %q: %q is not a valid regular expression: %w", e, expr, err)
		}
		out.entries = append(out.entries, allowEntry{namespace: ns, re: re, text: ns + "=" + expr})
	}
	return out, nil
}

// Allows reports whether a binding in namespace may bind the NEG name.
func (a AllowList) Allows(namespace, name string) bool {
	if len(a.entries) == 0 {
		return true
	}
	for _, e := range a.entries {
		if (e.namespace == "*" || e.namespace == namespace) && e.re.MatchString(name) {
			return true
		}
	}
	return false
}

// Empty reports whether the list has no entry (everything is allowed).
func (a AllowList) Empty() bool { return len(a.entries) == 0 }

// String renders the entries comma-separated.
func (a AllowList) String() string {
	texts := make([]string, len(a.entries))
	for i, e := range a.entries {
		texts[i] = e.text
	}
	return strings.Join(texts, ",")
}
