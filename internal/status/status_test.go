package status

import (
	"strings"
	"testing"
)

func TestLabelsAndFinalStates(t *testing.T) {
	final := map[string]bool{Completed: true, Expired: true, Withdrawn: true, Annulled: true}
	for _, s := range []string{DiplomaCheck, AwaitingReport, CountyReview, ProvincialReview, PreRegistered, IdentityReview, Completed, Expired, Withdrawn, Annulled} {
		if Label(s) == "" {
			t.Errorf("%s has no label", s)
		}
		if Terminal(s) != final[s] {
			t.Errorf("Terminal(%s) = %v", s, Terminal(s))
		}
	}
	var ended []string
	for _, s := range []string{Completed, Expired, Withdrawn, Annulled} {
		ended = append(ended, "'"+s+"'")
	}
	if want := "status NOT IN (" + strings.Join(ended, ", ") + ")"; OpenSQL != want {
		t.Errorf("OpenSQL = %q, want %q", OpenSQL, want)
	}
	if Label(Annulled) != "已作废" {
		t.Errorf("annulled is labelled %q", Label(Annulled))
	}
}

// HoldsIDNumberSQL names exactly the Released states.
func TestHoldsIDNumber(t *testing.T) {
	var released []string
	for _, s := range []string{DiplomaCheck, AwaitingReport, CountyReview, ProvincialReview, PreRegistered, IdentityReview, Completed, Expired, Withdrawn, Annulled} {
		if Released(s) {
			released = append(released, "'"+s+"'")
		}
		if Released(s) && !Terminal(s) {
			t.Errorf("%s is released but not terminal", s)
		}
	}
	if want := "status NOT IN (" + strings.Join(released, ", ") + ")"; HoldsIDNumberSQL != want {
		t.Errorf("HoldsIDNumberSQL = %q, want %q", HoldsIDNumberSQL, want)
	}
}
