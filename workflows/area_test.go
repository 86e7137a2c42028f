package workflows_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/status"
	"zikao/workflows"
)

// areaChange stores the office's reason, as the API does, and returns the
// change to area with window w, by the provincial office.
func (s *scenario) areaChange(area string, w workflows.Window) workflows.AreaChange {
	s.t.Helper()
	id, err := store.AddReason(context.Background(), s.in.RegistrationID, "area/"+uuid.NewString(), "考生迁居")
	if err != nil {
		s.t.Fatal(err)
	}
	return workflows.AreaChange{ExamAreaCode: area, Window: w, ReasonID: id, ByRole: workflows.ByProvincialReviewer, AccountID: reviewerID(s.t)}
}

// A change during the county review keeps the review's place; the old
// county office's decision is then refused, the new one's applies; the
// registration completes at the new area's desk with its code, the old
// desk refused. (A completed registration's workflow has ended: the API
// answers registration_closed.)
func TestAreaChangeDuringReview(t *testing.T) {
	storeFiles(t)
	s := newScenario(t, "zhuanshengben", "", "柳一", inWindow)
	later := workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(5 * 24 * time.Hour)}
	move := s.areaChange("0102", later)
	same, bad := move, move
	same.ExamAreaCode = "0106"
	bad.ReasonID = ""
	fromElsewhere := move
	fromElsewhere.ByRole, fromElsewhere.OfficeArea = workflows.ByCountyReviewer, "0103"
	oldCounty, newCounty := approve, approve
	oldCounty.OfficeArea, newCounty.OfficeArea = "0106", "0102"
	oldDesk, newDesk := photo, photo
	oldDesk.OfficeArea, newDesk.OfficeArea = "0106", "0102"
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: same, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: bad, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: fromElsewhere, refuse: workflows.ErrOtherArea},
		step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: move},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: oldCounty, refuse: workflows.ErrOtherArea},
		step{after: time.Hour, update: workflows.UpdateCountyReview, arg: newCounty},
		step{after: time.Hour, update: workflows.UpdateProvincialReview, arg: approve},
		// past the old window's end, within the new one's
		step{after: windowEnd.Sub(inWindow) + 24*time.Hour, update: workflows.UpdateOnsiteCheck, arg: oldDesk, refuse: workflows.ErrOtherArea},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: newDesk},
	)
	if out.Status != status.Completed {
		t.Fatalf("result %+v, want completed", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.CountyReview, status.ProvincialReview,
		status.PreRegistered, status.Completed)
	s.wantStepBy(4, workflows.ByProvincialReviewer, move.AccountID)
	s.wantOutbox("area_changed@4", "pre_registered@6", "completed@7")
	r := s.readModel()
	if r.ExamAreaCode != "0102" || !r.WindowEndsAt.Equal(later.EndsAt) || r.TicketNumber == nil ||
		!regexp.MustCompile(`^0102271\d{5}$`).MatchString(*r.TicketNumber) {
		t.Errorf("read model: area %s, window ends %s, ticket %v", r.ExamAreaCode, r.WindowEndsAt, r.TicketNumber)
	}
	if len(r.History) == 7 && r.History[3].Note != "考区由武汉市武昌区（0106）变更为武汉市江岸区（0102），现场确认时间2027年3月1日 08:00 至 2027年4月5日 08:00。变更原因：考生迁居" {
		t.Errorf("the change's note: %q", r.History[3].Note)
	}
}

// The new area's window ends earlier: the registration expires at its end;
// a window that has already ended expires it at once.
func TestAreaChangeTakesTheNewWindow(t *testing.T) {
	t.Run("ends later", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "柳二", inWindow)
		shorter := workflows.Window{StartsAt: windowStart, EndsAt: inWindow.Add(48 * time.Hour)}
		out := s.run(step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: s.areaChange("0102", shorter)})
		if out.Status != status.Expired {
			t.Fatalf("result %+v, want expired", out)
		}
		if r := s.readModel(); !r.UpdatedAt.Equal(shorter.EndsAt) {
			t.Errorf("expired at %s, want the new area's end %s", r.UpdatedAt, shorter.EndsAt)
		}
		s.wantHistory(status.PreRegistered, status.PreRegistered, status.Expired)
	})
	t.Run("ended", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "柳三", inWindow)
		ended := workflows.Window{StartsAt: windowStart, EndsAt: inWindow.Add(-time.Hour)}
		out := s.run(step{after: time.Hour, update: workflows.UpdateChangeExamArea, arg: s.areaChange("0102", ended)})
		if out.Status != status.Expired {
			t.Fatalf("result %+v, want expired", out)
		}
		r := s.readModel()
		if !r.UpdatedAt.Equal(inWindow.Add(time.Hour)) {
			t.Errorf("expired at %s, want at the change %s", r.UpdatedAt, inWindow.Add(time.Hour))
		}
		s.wantOutbox("pre_registered@1", "area_changed@2", "expired@3")
	})
}
