package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"

	"zikao/activities"
	"zikao/internal/files"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/internal/testenv"
	"zikao/workflows"
)

// Online identity verification (网上验证) and the office's manual check
// (人工核验), with the real activities over PostgreSQL: each test checks the
// updates' answers and what the read model, the history, the recorded tries
// and the e-mail outbox show afterwards.

// The history notes of online verification, as the applicant reads them.
const (
	noteFaceMismatch   = "网上验证未通过：人脸比对不一致"
	noteLiveness       = "网上验证未通过：朗读视频未通过活体检测"
	noteNotInRecords   = "网上验证未通过：公民身份信息库中无您的记录（如新办证件、户口迁移或军人证件），请到考区现场确认"
	noteThreeFailed    = "。三次网上验证均未通过，可申请人工核验或到考区现场确认"
	noteMatch          = "网上验证通过，注册完成"
	noteReviewAsked    = "已申请人工核验，等待考区办公室核验网上验证材料"
	noteReviewApproved = "人工核验通过，注册完成"
	noteReviewRefused  = "人工核验未通过，请到考区现场确认："
	noteSubmitted      = "提交注册"
	noteOnsite         = "现场确认通过，注册完成"
	noteExpired        = "现场确认期已结束，未完成确认"
)

// putFile writes the row of a file (the workflow only ever sees the id),
// and returns its id.
func putFile(t *testing.T, content, contentType string) string {
	return testenv.FileRow(t, database, []byte(content), contentType)
}

// applicant is the account that submitted the registration.
func (s *scenario) applicant() int64 {
	s.t.Helper()
	return s.readModel().AccountID
}

// onlineTry is a try the API would send after the identity service answered
// result: a fresh challenge, the three files stored (a portrait of its own).
func (s *scenario) onlineTry(result string) workflows.OnlineTry {
	s.t.Helper()
	return workflows.OnlineTry{
		ChallengeID:   uuid.NewString(),
		IDCardPhotoID: putFile(s.t, "id card photo of "+s.in.RegistrationID, files.JPEG),
		VideoID:       putFile(s.t, "video of "+s.in.RegistrationID, "video/mp4"),
		PortraitID:    putFile(s.t, "portrait "+uuid.NewString(), files.JPEG),
		Result:        result,
		AccountID:     s.applicant(),
	}
}

// askReview is the applicant's request for the manual check.
func (s *scenario) askReview() workflows.IdentityReviewRequest {
	s.t.Helper()
	return workflows.IdentityReviewRequest{AccountID: s.applicant()}
}

// approveIdentity is a county reviewer's approval of the manual check.
func (s *scenario) approveIdentity() (workflows.IdentityReview, int64) {
	s.t.Helper()
	reviewer := reviewerID(s.t)
	return workflows.IdentityReview{Approved: true, ByRole: workflows.ByCountyReviewer, AccountID: reviewer}, reviewer
}

// refuseIdentity stores the office's reason, as the service does, and
// returns the county reviewer's refusal that carries its id.
func (s *scenario) refuseIdentity(text string) workflows.IdentityReview {
	s.t.Helper()
	id, err := store.AddReason(context.Background(), s.in.RegistrationID, "identity-review/"+uuid.NewString(), text)
	if err != nil {
		s.t.Fatal(err)
	}
	return workflows.IdentityReview{ReasonID: id, ByRole: workflows.ByCountyReviewer, AccountID: reviewerID(s.t)}
}

// online is the read model's online verification.
type online struct {
	triesLeft  int
	closed     bool
	lastResult string // "" for none
	asked      bool
	reason     string // "" for none
}

func orNone(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *scenario) wantOnline(want online) {
	s.t.Helper()
	r := s.readModel()
	got := online{triesLeft: r.OnlineTriesLeft, closed: r.OnlineClosed, lastResult: orNone(r.OnlineLastResult),
		asked: r.IdentityReviewAsked, reason: orNone(r.IdentityReviewReason)}
	if r.OnlineLastResult != nil && *r.OnlineLastResult == "" || r.IdentityReviewReason != nil && *r.IdentityReviewReason == "" {
		s.t.Errorf("read model online verification holds empty strings, want NULL: %+v", got)
	}
	if got != want {
		s.t.Errorf("read model online verification = %+v, want %+v", got, want)
	}
}

// wantNotes checks the notes of the whole history.
func (s *scenario) wantNotes(notes ...string) {
	s.t.Helper()
	var got []string
	for _, h := range s.readModel().History {
		got = append(got, h.Note)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", notes) {
		s.t.Errorf("history notes\n got %q\nwant %q", got, notes)
	}
}

// wantStepBy checks who made history step seq.
func (s *scenario) wantStepBy(seq int, role string, account int64) {
	s.t.Helper()
	for _, h := range s.readModel().History {
		if h.Seq != seq {
			continue
		}
		var got int64
		if h.ByAccountID != nil {
			got = *h.ByAccountID
		}
		if h.ByRole != role || got != account {
			s.t.Errorf("step %d (%s) by %s account %d, want %s account %d", seq, h.Status, h.ByRole, got, role, account)
		}
		return
	}
	s.t.Errorf("no step %d in the history", seq)
}

// tried is a try the read model should hold, at its history step.
type tried struct {
	seq int
	try workflows.OnlineTry
}

// wantTries checks the recorded tries (online_tries), in order.
func (s *scenario) wantTries(want ...tried) {
	s.t.Helper()
	var rows []struct {
		Seq       int    `db:"seq"`
		Challenge string `db:"challenge_id"`
		Result    string `db:"result"`
		IDCard    string `db:"id_card_photo_file_id"`
		Video     string `db:"video_file_id"`
		Portrait  string `db:"portrait_file_id"`
		Status    string `db:"status"`
	}
	err := database.Select(&rows, `
		SELECT t.seq, t.challenge_id, t.result, t.id_card_photo_file_id, t.video_file_id, t.portrait_file_id, h.status
		FROM online_tries t JOIN registration_history h USING (registration_id, seq)
		WHERE t.registration_id = $1 ORDER BY t.seq`, s.in.RegistrationID)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(rows) != len(want) {
		s.t.Errorf("%d tries recorded, want %d: %+v", len(rows), len(want), rows)
		return
	}
	for i, r := range rows {
		w := want[i]
		wantStatus := status.PreRegistered
		if w.try.Result == workflows.ResultMatch {
			wantStatus = status.Completed
		}
		if r.Seq != w.seq || r.Challenge != w.try.ChallengeID || r.Result != w.try.Result || r.IDCard != w.try.IDCardPhotoID ||
			r.Video != w.try.VideoID || r.Portrait != w.try.PortraitID || r.Status != wantStatus {
			s.t.Errorf("try %d = %+v, want step %d (%s) %+v", i+1, r, w.seq, wantStatus, w.try)
		}
	}
}

// wantOutbox checks the e-mails written for the registration, as kind@seq.
func (s *scenario) wantOutbox(want ...string) {
	s.t.Helper()
	var got []string
	err := database.Select(&got, `SELECT kind || '@' || seq FROM outbox WHERE registration_id = $1 ORDER BY seq, kind`, s.in.RegistrationID)
	if err != nil {
		s.t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		s.t.Errorf("outbox = %v, want %v", got, want)
	}
}

// wantPhoto checks the photo the completed registration keeps.
func (s *scenario) wantPhoto(fileID string) {
	s.t.Helper()
	if r := s.readModel(); r.PhotoFileID == nil || *r.PhotoFileID != fileID {
		s.t.Errorf("photo_file_id = %v, want %s", r.PhotoFileID, fileID)
	}
}

// threeFailures are three failed tries, an hour apart, the last one closing
// online verification.
func (s *scenario) threeFailures() ([]workflows.OnlineTry, []step) {
	s.t.Helper()
	tries := []workflows.OnlineTry{
		s.onlineTry(workflows.ResultFaceMismatch),
		s.onlineTry(workflows.ResultLivenessFailed),
		s.onlineTry(workflows.ResultFaceMismatch),
	}
	var steps []step
	for _, t := range tries {
		steps = append(steps, step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: t})
	}
	return tries, steps
}

// The notes of threeFailures' steps.
var threeFailedNotes = []string{noteFaceMismatch + "，剩余 2 次", noteLiveness + "，剩余 1 次", noteFaceMismatch + noteThreeFailed}

// threeFailedTries are threeFailures as recorded at steps 2 to 4.
func threeFailedTries(tries []workflows.OnlineTry) []tried {
	return []tried{{2, tries[0]}, {3, tries[1]}, {4, tries[2]}}
}

// 1. A match completes the registration with a ticket; the portrait is its
// photo. An enrolled (在籍) applicant keeps the selected ticket number.
func TestOnlineMatchCompletes(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "欧阳一", inWindow)
		failed, match := s.onlineTry(workflows.ResultFaceMismatch), s.onlineTry(workflows.ResultMatch)
		out := s.run(
			step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: failed},
			step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: match},
		)
		s.wantTicket(out)
		s.wantPhoto(match.PortraitID)
		s.wantHistory(status.PreRegistered, status.PreRegistered, status.Completed)
		s.wantNotes(noteSubmitted, noteFaceMismatch+"，剩余 2 次", noteMatch)
		s.wantStepBy(2, workflows.ByApplicant, failed.AccountID)
		s.wantStepBy(3, workflows.ByApplicant, match.AccountID)
		s.wantOnline(online{triesLeft: 2, lastResult: workflows.ResultMatch})
		s.wantTries(tried{2, failed}, tried{3, match})
		s.wantOutbox("pre_registered@1", "completed@3") // none for the failed try
	})
	t.Run("enrolled keeps the selected ticket number", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "欧阳二", inWindow)
		// As the API creates an enrolled registration: it starts pre-registered
		// with the number the applicant selected from the enrolment records.
		const selected = "010624100042"
		if _, err := database.Exec(`UPDATE registrations SET kind = 'enrolled', selected_ticket_number = $2 WHERE id = $1`,
			s.in.RegistrationID, selected); err != nil {
			t.Fatal(err)
		}
		s.in.Kind = workflows.KindEnrolled
		match := s.onlineTry(workflows.ResultMatch)
		out := s.run(step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: match})
		if out.Status != status.Completed {
			t.Fatalf("result = %+v, want completed", out)
		}
		if r := s.readModel(); r.TicketNumber == nil || *r.TicketNumber != selected {
			t.Errorf("ticket number = %v, want the selected %s", r.TicketNumber, selected)
		}
		s.wantPhoto(match.PortraitID)
		s.wantHistory(status.PreRegistered, status.Completed)
		s.wantNotes(noteSubmitted, noteMatch)
		s.wantOnline(online{triesLeft: 3, lastResult: workflows.ResultMatch})
		s.wantTries(tried{2, match})
		s.wantOutbox("pre_registered@1", "completed@2")
	})
}

// 2. Three failed tries (face mismatch and liveness mixed) close online
// verification; a challenge serves one try; malformed tries are refused.
func TestOnlineThreeFailuresClose(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "欧阳三", inWindow)
	first, second, third := s.onlineTry(workflows.ResultFaceMismatch), s.onlineTry(workflows.ResultLivenessFailed), s.onlineTry(workflows.ResultFaceMismatch)
	again := s.onlineTry(workflows.ResultMatch)
	again.ChallengeID = first.ChallengeID // the same challenge, another request
	unknown := s.onlineTry("maybe")
	noVideo := s.onlineTry(workflows.ResultMatch)
	noVideo.VideoID = ""
	fourth := s.onlineTry(workflows.ResultMatch)
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: first},
		step{after: time.Minute, update: workflows.UpdateOnlineTry, arg: again, refuse: workflows.ErrChallengeExpired},
		step{after: time.Minute, update: workflows.UpdateOnlineTry, arg: unknown, refuse: workflows.ErrInvalidDecision},
		step{after: time.Minute, update: workflows.UpdateOnlineTry, arg: noVideo, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: second},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: third},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: fourth, refuse: workflows.ErrOnlineClosed},
	)
	// Nobody goes on site: the registration expires with the window.
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.Expired)
	s.wantNotes(append(append([]string{noteSubmitted}, threeFailedNotes...), noteExpired)...)
	s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch})
	s.wantTries(tried{2, first}, tried{3, second}, tried{4, third})
	s.wantOutbox("pre_registered@1", "expired@5")
	if r := s.readModel(); r.TicketNumber != nil || r.PhotoFileID != nil {
		t.Errorf("ticket %v, photo %v on an expired registration", r.TicketNumber, r.PhotoFileID)
	}
}

// 3. not_in_records closes online verification at once and offers no
// manual check; neither does a single failure; the on-site check stays.
func TestOnlineNotInRecordsClosesAtOnce(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "欧阳四", inWindow)
	failed, unknown, later := s.onlineTry(workflows.ResultLivenessFailed), s.onlineTry(workflows.ResultNotInRecords), s.onlineTry(workflows.ResultMatch)
	out := s.run(
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNoIdentityReview},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: failed},
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNoIdentityReview},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: unknown},
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNoIdentityReview},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: later, refuse: workflows.ErrOnlineClosed},
		step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)
	s.wantTicket(out)
	s.wantPhoto(photo.PhotoFileID)
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.Completed)
	s.wantNotes(noteSubmitted, noteLiveness+"，剩余 2 次", noteNotInRecords, noteOnsite)
	s.wantOnline(online{triesLeft: 2, closed: true, lastResult: workflows.ResultNotInRecords})
	s.wantTries(tried{2, failed}, tried{3, unknown})
	s.wantOutbox("pre_registered@1", "completed@4")
}

// 4a. The office approves the manual check: completed, the last try's
// portrait as the photo. Only the county or provincial office decides.
func TestIdentityReviewApproved(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "欧阳五", inWindow)
	tries, steps := s.threeFailures()
	byOperator, _ := s.approveIdentity()
	byOperator.ByRole = workflows.ByOnsiteOperator
	approval, reviewer := s.approveIdentity()
	out := s.run(append(steps,
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: approval, refuse: workflows.ErrNotAwaitingReview}, // not asked for yet
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
		step{after: time.Minute, update: workflows.UpdateOnlineTry, arg: s.onlineTry(workflows.ResultMatch), refuse: workflows.ErrNotPreRegistered},
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: byOperator, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: approval},
	)...)
	s.wantTicket(out)
	s.wantPhoto(tries[2].PortraitID)
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview, status.Completed)
	s.wantNotes(append(append([]string{noteSubmitted}, threeFailedNotes...), noteReviewAsked, noteReviewApproved)...)
	s.wantStepBy(5, workflows.ByApplicant, tries[0].AccountID)
	s.wantStepBy(6, workflows.ByCountyReviewer, reviewer)
	s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true})
	s.wantTries(threeFailedTries(tries)...)
	s.wantOutbox("pre_registered@1", "completed@6") // none for the tries, none for the request
}

// 4b. The office refuses the manual check: a reason is required; the
// registration is pre-registered again with online verification closed,
// the reason shown and e-mailed; it may be asked for once only; the on-site
// check still completes it within the window.
func TestIdentityReviewRefused(t *testing.T) {
	const reason = "视频中人像与身份证照片不符"
	s := newScenario(t, "zhuanke", "", "欧阳六", inWindow)
	tries, steps := s.threeFailures()
	refusal := s.refuseIdentity(reason)
	noReason := refusal
	noReason.ReasonID = ""
	out := s.run(append(steps,
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
		step{after: time.Minute, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNotPreRegistered}, // asked twice
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: noReason, refuse: workflows.ErrInvalidDecision},
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: refusal},
		step{after: time.Minute, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNoIdentityReview}, // once only
		step{after: time.Minute, update: workflows.UpdateOnlineTry, arg: s.onlineTry(workflows.ResultMatch), refuse: workflows.ErrOnlineClosed},
		step{after: time.Minute, update: workflows.UpdateIdentityReview, arg: s.refuseIdentity(reason), refuse: workflows.ErrNotAwaitingReview},
		step{after: 24 * time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo},
	)...)
	s.wantTicket(out)
	s.wantPhoto(photo.PhotoFileID)
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview,
		status.PreRegistered, status.Completed)
	s.wantNotes(append(append([]string{noteSubmitted}, threeFailedNotes...), noteReviewAsked, noteReviewRefused+reason, noteOnsite)...)
	s.wantStepBy(6, workflows.ByCountyReviewer, refusal.AccountID)
	s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true, reason: reason})
	s.wantTries(threeFailedTries(tries)...)
	s.wantOutbox("pre_registered@1", "identity_refused@6", "completed@7")
	if r := s.readModel(); r.RejectionReason != nil || r.AnnulmentReason != nil {
		t.Errorf("rejection reason %v, annulment reason %v after a refused manual check, want none", r.RejectionReason, r.AnnulmentReason)
	}
	var body string
	if err := database.Get(&body, `SELECT body FROM outbox WHERE registration_id = $1 AND kind = 'identity_refused'`, s.in.RegistrationID); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(body, reason) {
		t.Errorf("the identity_refused e-mail does not give the reason %q:\n%s", reason, body)
	}
}

// 5. A manual check in progress does not expire when the window ends: the
// office decides it after the end. Approved, it completes; refused, the
// registration is pre-registered again and expires at once.
func TestIdentityReviewOutlastsTheWindow(t *testing.T) {
	untilEnd := windowEnd.Sub(inWindow)
	t.Run("approved after the end", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "欧阳七", inWindow)
		tries, steps := s.threeFailures()
		approval, reviewer := s.approveIdentity()
		out := s.run(append(steps,
			step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
			// past the end: no expiry, no try
			step{after: untilEnd, update: workflows.UpdateOnlineTry, arg: s.onlineTry(workflows.ResultMatch), refuse: workflows.ErrNotPreRegistered},
			step{after: 5 * 24 * time.Hour, update: workflows.UpdateIdentityReview, arg: approval},
		)...)
		s.wantTicket(out)
		s.wantPhoto(tries[2].PortraitID)
		s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview, status.Completed)
		s.wantStepBy(6, workflows.ByCountyReviewer, reviewer)
		s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true})
		s.wantTries(threeFailedTries(tries)...)
		s.wantOutbox("pre_registered@1", "completed@6")
		r := s.readModel()
		if last := r.History[len(r.History)-1]; !last.At.After(windowEnd) {
			t.Errorf("completed at %s, want after the end of the window %s", last.At, windowEnd)
		}
		if !r.WindowEndsAt.Equal(windowEnd) {
			t.Errorf("window ends %s, want %s", r.WindowEndsAt, windowEnd)
		}
	})
	t.Run("refused after the end", func(t *testing.T) {
		const reason = "身份证照片模糊，无法核验"
		s := newScenario(t, "zhuanke", "", "欧阳八", inWindow)
		tries, steps := s.threeFailures()
		out := s.run(append(steps,
			step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
			step{after: untilEnd + 24*time.Hour, update: workflows.UpdateIdentityReview, arg: s.refuseIdentity(reason)},
		)...)
		if out.Status != status.Expired {
			t.Fatalf("result = %+v, want expired", out)
		}
		s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview,
			status.PreRegistered, status.Expired)
		s.wantNotes(append(append([]string{noteSubmitted}, threeFailedNotes...), noteReviewAsked, noteReviewRefused+reason, noteExpired)...)
		s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true, reason: reason})
		s.wantTries(threeFailedTries(tries)...)
		s.wantOutbox("pre_registered@1", "identity_refused@6", "expired@7")
		r := s.readModel()
		refused, expired := r.History[5], r.History[6]
		if !refused.At.After(windowEnd) || !expired.At.Equal(refused.At) {
			t.Errorf("refused at %s, expired at %s: want both at the refusal, after the end %s", refused.At, expired.At, windowEnd)
		}
	})
}

// 6. A failed try leaves the registration pre-registered with tries left:
// it expires with the window as before.
func TestOnlineFailedTryThenExpires(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "欧阳九", inWindow)
	failed := s.onlineTry(workflows.ResultLivenessFailed)
	out := s.run(step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: failed})
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.Expired)
	s.wantNotes(noteSubmitted, noteLiveness+"，剩余 2 次", noteExpired)
	s.wantStepBy(3, workflows.BySystem, 0)
	s.wantOnline(online{triesLeft: 2, lastResult: workflows.ResultLivenessFailed})
	s.wantTries(tried{2, failed})
	s.wantOutbox("pre_registered@1", "expired@3")
	if r := s.readModel(); !r.UpdatedAt.Equal(windowEnd) {
		t.Errorf("expired at %s, want the end of the window %s", r.UpdatedAt, windowEnd)
	}
}

// 7. The applicant withdraws, or the office annuls, while a manual check
// waits; the window moves meanwhile.
func TestIdentityReviewWithdrawnOrAnnulled(t *testing.T) {
	t.Run("withdrawn", func(t *testing.T) {
		s := newScenario(t, "zhuanke", "", "欧阳十", inWindow)
		tries, steps := s.threeFailures()
		longer := workflows.Window{StartsAt: windowStart, EndsAt: windowEnd.Add(10 * 24 * time.Hour)}
		out := s.run(append(steps,
			step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
			step{after: time.Hour, update: workflows.UpdateChangeWindow, arg: longer},
			step{after: time.Hour, update: workflows.UpdateOnsiteCheck, arg: photo, refuse: workflows.ErrNotPreRegistered},
			step{after: time.Hour, update: workflows.UpdateWithdraw, arg: workflows.Withdrawal{AccountID: tries[0].AccountID}},
		)...)
		if out.Status != status.Withdrawn {
			t.Fatalf("result = %+v, want withdrawn", out)
		}
		// The window move is a step of its own, with its notice; the manual check keeps waiting.
		s.wantHistory(status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview,
			status.IdentityReview, status.Withdrawn)
		s.wantNotes(append(append([]string{noteSubmitted}, threeFailedNotes...), noteReviewAsked,
			"考区现场确认时间调整为2027年3月1日 08:00 至 2027年4月10日 08:00", "考生已撤销注册")...)
		s.wantStepBy(6, workflows.ByAdministrator, 0)
		s.wantStepBy(7, workflows.ByApplicant, tries[0].AccountID)
		s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true})
		s.wantTries(threeFailedTries(tries)...)
		s.wantOutbox("pre_registered@1", "window_moved@6", "withdrawn@7")
		if r := s.readModel(); !r.WindowEndsAt.Equal(longer.EndsAt) || r.TicketNumber != nil {
			t.Errorf("window ends %s, ticket %v: want %s and none", r.WindowEndsAt, r.TicketNumber, longer.EndsAt)
		}
	})
	t.Run("annulled", func(t *testing.T) {
		const reason = "冒用他人身份证号"
		s := newScenario(t, "zhuanke", "", "欧阳十一", inWindow)
		tries, steps := s.threeFailures()
		out := s.run(append(steps,
			step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview()},
			step{after: time.Hour, update: workflows.UpdateAnnul, arg: s.annulment(reason)},
		)...)
		s.wantAnnulled(out, reason, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.PreRegistered, status.IdentityReview)
		s.wantOnline(online{triesLeft: 0, closed: true, lastResult: workflows.ResultFaceMismatch, asked: true})
		s.wantTries(threeFailedTries(tries)...)
		s.wantOutbox("pre_registered@1", "annulled@6")
	})
}

// 8. A try after the window ended is refused. (A pre-registered
// registration expires as the window ends: a try meets it still
// pre-registered after the end only while another step is being recorded
// across the end, here a first try whose write is made slow with a mock
// that calls the real one. The workflow then expires it.)
func TestOnlineTryAfterTheWindowEnds(t *testing.T) {
	s := newScenario(t, "zhuanke", "", "欧阳十二", inWindow)
	acts := &activities.Activities{Registrations: store}
	isTry := mock.MatchedBy(func(tr registrations.Transition) bool { return tr.Try != nil })
	s.env.OnActivity("Record", mock.Anything, isTry).Return(acts.Record).After(2 * time.Minute)
	s.env.OnActivity("Record", mock.Anything, mock.Anything).Return(acts.Record)
	first, late := s.onlineTry(workflows.ResultFaceMismatch), s.onlineTry(workflows.ResultMatch)
	out := s.run(
		step{after: windowEnd.Sub(inWindow) - time.Minute, update: workflows.UpdateOnlineTry, arg: first},
		// 30 seconds after the end, while the first try is still being recorded
		step{after: 90 * time.Second, update: workflows.UpdateOnlineTry, arg: late, refuse: workflows.ErrOutsideWindow},
	)
	if out.Status != status.Expired {
		t.Fatalf("result = %+v, want expired", out)
	}
	s.wantHistory(status.PreRegistered, status.PreRegistered, status.Expired)
	s.wantNotes(noteSubmitted, noteFaceMismatch+"，剩余 2 次", noteExpired)
	s.wantOnline(online{triesLeft: 2, lastResult: workflows.ResultFaceMismatch})
	s.wantTries(tried{2, first})
	s.wantOutbox("pre_registered@1", "expired@3")
	if r := s.readModel(); r.TicketNumber != nil || r.PhotoFileID != nil {
		t.Errorf("ticket %v, photo %v after a try outside the window", r.TicketNumber, r.PhotoFileID)
	}
}

// 9. No try and no manual check while the registration is not
// pre-registered (a 专升本 whose report the county office reviews).
func TestOnlineTryOnlyWhilePreRegistered(t *testing.T) {
	s := newScenario(t, "zhuanshengben", "", "欧阳十三", inWindow)
	approval, _ := s.approveIdentity()
	out := s.run(
		step{after: time.Minute, update: workflows.UpdateUploadReport, arg: s.upload},
		step{after: time.Hour, update: workflows.UpdateOnlineTry, arg: s.onlineTry(workflows.ResultMatch), refuse: workflows.ErrNotPreRegistered},
		step{after: time.Hour, update: workflows.UpdateRequestIdentityReview, arg: s.askReview(), refuse: workflows.ErrNotPreRegistered},
		step{after: time.Hour, update: workflows.UpdateIdentityReview, arg: approval, refuse: workflows.ErrNotAwaitingReview},
		step{after: time.Hour, update: workflows.UpdateWithdraw},
	)
	if out.Status != status.Withdrawn {
		t.Fatalf("result = %+v, want withdrawn", out)
	}
	s.wantHistory(status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.Withdrawn)
	s.wantOnline(online{triesLeft: 3})
	s.wantTries()
	s.wantOutbox("withdrawn@4")
}
