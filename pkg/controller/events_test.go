package controller

import (
	"testing"
)

func TestWarningMemory(t *testing.T) {
	w := newWarningMemory()
	k := keyOf("ns", "svc")
	if !w.changed(k, "s", "m1") || w.changed(k, "s", "m1") {
		t.Error("same message reported twice or first not reported")
	}
	if !w.changed(k, "s", "m2") {
		t.Error("new message not reported")
	}
	w.clear(k, "s")
	if !w.changed(k, "s", "m2") {
		t.Error("message not reported after clear")
	}
}
