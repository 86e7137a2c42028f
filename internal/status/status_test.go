package status

import "testing"

func TestLabelsAndFinalStates(t *testing.T) {
	final := map[string]bool{Completed: true, Expired: true, Withdrawn: true, Annulled: true}
	for _, s := range []string{DiplomaCheck, AwaitingReport, CountyReview, ProvincialReview, PreRegistered, Completed, Expired, Withdrawn, Annulled} {
		if Label(s) == "" {
			t.Errorf("%s has no label", s)
		}
		if Terminal(s) != final[s] {
			t.Errorf("Terminal(%s) = %v", s, Terminal(s))
		}
	}
	if Label(Annulled) != "已作废" {
		t.Errorf("annulled is labelled %q", Label(Annulled))
	}
}
