package controller

import (
	"testing"

	"github.com/neg-controller/neg-controller/pkg/endpoints"
)

func TestSkipSummary(t *testing.T) {
	got := skipSummary(map[endpoints.SkipReason]int{endpoints.SkipUnknownNode: 2, endpoints.SkipOtherFamily: 5, endpoints.SkipNoNodeName: 1})
	if want := "NoNodeName=1, UnknownNode=2"; got != want {
		t.Errorf("skipSummary = %q, want %q", got, want)
	}
}
