// Package dedup remembers the last Warning message recorded per object and slot, so that
// reconcilers syncing an object again and again record a warning once, and again only when its
// message changes or after the slot was cleared. A slot is a reason, optionally qualified (by NEG,
// port, ...). The NEG controller and the NEG binding controller both use it.
package dedup

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// Warnings is the memory; the zero value is not usable, create it with NewWarnings. It is safe
// for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	last map[cache.ObjectName]map[string]string
}

// NewWarnings returns an empty memory.
func NewWarnings() *Warnings {
	return &Warnings{last: map[cache.ObjectName]map[string]string{}}
}

// Changed records msg for (key, slot) and reports whether it differs from the last one: whether
// the warning should be recorded.
func (w *Warnings) Changed(key cache.ObjectName, slot, msg string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.last[key]
	if m == nil {
		m = map[string]string{}
		w.last[key] = m
	}
	if old, ok := m[slot]; ok && old == msg {
		return false
	}
	m[slot] = msg
	return true
}

// Clear forgets (key, slot), so the next occurrence is recorded again.
func (w *Warnings) Clear(key cache.ObjectName, slot string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last[key], slot)
	if len(w.last[key]) == 0 {
		delete(w.last, key)
	}
}

// Keep forgets every slot of key not in slots (nil: every slot of key).
func (w *Warnings) Keep(key cache.ObjectName, slots map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for slot := range w.last[key] {
		if !slots[slot] {
			delete(w.last[key], slot)
		}
	}
	if len(w.last[key]) == 0 {
		delete(w.last, key)
	}
}
