package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"zikao/internal/identity"
	"zikao/internal/status"
	"zikao/workflows"
)

// action is one thing a client does to a registration.
type action int

const (
	actSubmit         action = iota // POST /registrations
	actAwait                        // poll GET /registrations/{id} until the status is reached
	actUpload                       // POST …/diploma-report
	actCounty                       // POST …/county-review
	actProvincial                   // POST …/provincial-review
	actOnsite                       // GET /onsite/registrations, then POST …/onsite-check
	actWithdraw                     // POST …/withdraw
	actAnnul                        // POST …/annul, by the county reviewer of the area or a provincial reviewer
	actTry                          // POST …/online-verification/challenge, then POST …/online-verification (网上验证)
	actAskReview                    // POST …/identity-review-request (人工核验, after three failed tries)
	actIdentityReview               // POST …/identity-review, by the county reviewer of the area or a provincial reviewer
	actArea                         // POST …/exam-area (考区变更), by the county reviewer of the current area or a provincial reviewer
	actAreaRace                     // POST …/exam-area by the county office and …/onsite-check at the old area's desk at once
)

// step is one action with the statuses it starts from and leads to.
type step struct {
	Act     action
	Approve bool     // reviews: approve, else reject with a reason
	From    []string // statuses the registration may be in before (decisions)
	To      string   // the status the step leads to
	AtOnce  bool     // sent right after the step before, without a pause
	// Provincial: an annulment, manual check or exam-area change by the
	// provincial reviewer, else by the county reviewer of the
	// registration's (current) exam area.
	Provincial bool
	// Result: an online try's expected answer from the identity service
	// (workflows.ResultMatch, …); the client sends files that lead to it.
	Result string
}

// path is a way through the registration process, as a client drives it.
type path struct {
	Name     string
	Label    string
	Kind     string // workflows.KindNew or KindEnrolled
	Level    string // new applicants: zhuanke or zhuanshengben
	Found    bool   // 专升本: the diploma registry knows the applicant
	Steps    []step
	Target   string // the status the client drives the registration to
	CheckRow string // the diploma check's own history entry: "" none, else its status
	// CheckRowOptional: a withdrawal or annulment during the diploma check
	// may stop the check before it records anything.
	CheckRowOptional bool
	// Then: after this path, ANOTHER applicant account registers with the
	// same ID number and drives this path (the real person, once the office
	// has annulled the registration made with their ID number).
	Then *path
}

func decide(a action, from, to string) step { return step{Act: a, From: []string{from}, To: to} }

func review(a action, approve bool, to string) step {
	from := status.CountyReview
	if a == actProvincial {
		from = status.ProvincialReview
	}
	return step{Act: a, Approve: approve, From: []string{from}, To: to}
}

var (
	submit       = step{Act: actSubmit}
	awaitReport  = step{Act: actAwait, To: status.AwaitingReport}
	awaitPre     = step{Act: actAwait, To: status.PreRegistered}
	upload       = decide(actUpload, status.AwaitingReport, status.CountyReview)
	countyOK     = review(actCounty, true, status.ProvincialReview)
	countyNo     = review(actCounty, false, status.AwaitingReport)
	provincialOK = review(actProvincial, true, status.PreRegistered)
	provincialNo = review(actProvincial, false, status.AwaitingReport)
	onsite       = decide(actOnsite, status.PreRegistered, status.Completed)

	// Online identity verification (网上验证) and the office's manual check.
	tryMatch        = step{Act: actTry, Result: workflows.ResultMatch, From: []string{status.PreRegistered}, To: status.Completed}
	tryFace         = step{Act: actTry, Result: workflows.ResultFaceMismatch, From: []string{status.PreRegistered}, To: status.PreRegistered}
	tryLiveness     = step{Act: actTry, Result: workflows.ResultLivenessFailed, From: []string{status.PreRegistered}, To: status.PreRegistered}
	tryNotInRecords = step{Act: actTry, Result: workflows.ResultNotInRecords, From: []string{status.PreRegistered}, To: status.PreRegistered}
	askReview       = decide(actAskReview, status.PreRegistered, status.IdentityReview)
)

// areaReason is the reason the office gives for every exam-area change.
const areaReason = "考生工作调动，申请在新考区现场确认"

// changeArea is an exam-area change (考区变更) of a registration that waits
// in st: it keeps its status.
func changeArea(provincial bool, st string) step {
	return step{Act: actArea, From: []string{st}, To: st, Provincial: provincial}
}

// identityReview is the office's manual check: approved completes, refused
// (with identityRefusal) sends the applicant on site.
func identityReview(approve, provincial bool) step {
	to := status.Completed
	if !approve {
		to = status.PreRegistered
	}
	return step{Act: actIdentityReview, Approve: approve, Provincial: provincial, From: []string{status.IdentityReview}, To: to}
}

// identityRefusal is the reason the office gives when it refuses a manual check.
const identityRefusal = "视频中人像与身份证照片不一致，请携带身份证到考区现场确认"

// online reports whether the path tries online verification.
func (p path) online() bool {
	return slices.ContainsFunc(p.Steps, func(st step) bool { return st.Act == actTry })
}

// notInRecords reports whether the path's applicant is one the identity
// service does not know (an ID number with the sequence 999).
func (p path) notInRecords() bool {
	return slices.ContainsFunc(p.Steps, func(st step) bool { return st.Act == actTry && st.Result == workflows.ResultNotInRecords })
}

// zhuankeOnline is a 专科 registration (pre-registered at once) going on
// with steps.
func zhuankeOnline(name, label string, steps ...step) path {
	return path{Name: name, Label: label, Kind: workflows.KindNew, Level: "zhuanke",
		Steps: append([]step{submit}, steps...), Target: steps[len(steps)-1].To}
}

func withdrawFrom(from ...string) step {
	return step{Act: actWithdraw, From: from, To: status.Withdrawn}
}

// annulReason is the reason the office gives for every annulment.
const annulReason = "经核实，本次注册使用了他人的身份证号，予以作废"

// annulFrom is an annulment by the county office (or the provincial one).
func annulFrom(provincial bool, from ...string) step {
	return step{Act: actAnnul, From: from, To: status.Annulled, Provincial: provincial}
}

func zhuanshengben(name, label string, found bool, steps ...step) path {
	p := path{Name: name, Label: label, Kind: workflows.KindNew, Level: "zhuanshengben", Found: found,
		Steps: append([]step{submit}, steps...), CheckRow: status.AwaitingReport}
	if found {
		p.CheckRow = status.PreRegistered
	}
	p.Target = p.Steps[len(p.Steps)-1].To
	return p
}

// The paths, every one the README describes, and withdrawals at each stage.
var (
	pathZhuanke = path{Name: "zhuanke", Label: "专科 → on-site → completed", Kind: workflows.KindNew, Level: "zhuanke",
		Steps: []step{submit, onsite}, Target: status.Completed}
	pathFound   = zhuanshengben("found", "专升本, 学信网 found → on-site → completed", true, awaitPre, onsite)
	pathLongest = zhuanshengben("longest", "专升本 not found → report → county → provincial → on-site", false,
		awaitReport, upload, countyOK, provincialOK, onsite)
	pathCountyReject = zhuanshengben("county-reject", "longest, county rejects once, new report", false,
		awaitReport, upload, countyNo, upload, countyOK, provincialOK, onsite)
	pathProvincialReject = zhuanshengben("provincial-reject", "longest, provincial rejects once, new report", false,
		awaitReport, upload, countyOK, provincialNo, upload, countyOK, provincialOK, onsite)
	pathEnrolled = path{Name: "enrolled", Label: "在籍注册 → on-site with the selected ticket", Kind: workflows.KindEnrolled,
		Steps: []step{submit, onsite}, Target: status.Completed}

	pathWithdrawCheck = func() path {
		w := withdrawFrom(status.DiplomaCheck, status.AwaitingReport)
		w.AtOnce = true
		p := zhuanshengben("withdraw-check", "withdrawn during the diploma check", false, w)
		p.CheckRowOptional = true
		return p
	}()
	pathWithdrawReport = zhuanshengben("withdraw-report", "withdrawn awaiting a report", false,
		awaitReport, withdrawFrom(status.AwaitingReport))
	pathWithdrawCounty = zhuanshengben("withdraw-county", "withdrawn in county review", false,
		awaitReport, upload, withdrawFrom(status.CountyReview))
	pathWithdrawProvincial = zhuanshengben("withdraw-provincial", "withdrawn in provincial review", false,
		awaitReport, upload, countyOK, withdrawFrom(status.ProvincialReview))
	pathWithdrawFound = zhuanshengben("withdraw-found", "专升本 found, withdrawn pre-registered", true,
		awaitPre, withdrawFrom(status.PreRegistered))
	pathWithdrawZhuanke = path{Name: "withdraw-zhuanke", Label: "专科, withdrawn pre-registered", Kind: workflows.KindNew,
		Level: "zhuanke", Steps: []step{submit, withdrawFrom(status.PreRegistered)}, Target: status.Withdrawn}
	pathWithdrawEnrolled = path{Name: "withdraw-enrolled", Label: "在籍, withdrawn pre-registered", Kind: workflows.KindEnrolled,
		Steps: []step{submit, withdrawFrom(status.PreRegistered)}, Target: status.Withdrawn}

	// Annulments (作废) by the county office of the area or the provincial one.
	pathAnnulCheck = func() path {
		a := annulFrom(false, status.DiplomaCheck, status.AwaitingReport)
		a.AtOnce = true
		p := zhuanshengben("annul-check", "annulled by the county office during the diploma check", false, a)
		p.CheckRowOptional = true
		return p
	}()
	pathAnnulReport = zhuanshengben("annul-report", "annulled awaiting a report, by the provincial office", false,
		awaitReport, annulFrom(true, status.AwaitingReport))
	pathAnnulCounty = zhuanshengben("annul-county", "annulled in county review, by the county office", false,
		awaitReport, upload, annulFrom(false, status.CountyReview))
	// The real person registers right after the annulment, from another account.
	pathRealPerson = path{Name: "real-person", Label: "then the real person, another account: 专科 → on-site → done",
		Kind: workflows.KindNew, Level: "zhuanke", Steps: []step{{Act: actSubmit, AtOnce: true}, onsite}, Target: status.Completed}
	pathAnnulRealPerson = path{Name: "annul-real-person", Label: "专科 on another's ID number, annulled pre-registered, province",
		Kind: workflows.KindNew, Level: "zhuanke", Steps: []step{submit, annulFrom(true, status.PreRegistered)}, Target: status.Annulled,
		Then: &pathRealPerson}

	// Online identity verification (网上验证), three failed tries mixing
	// both kinds of failure, and the office's manual check (人工核验).
	pathOnlineMatch = zhuankeOnline("online-match", "专科 → 网上验证 match → completed", tryMatch)
	pathOnlineRetry = zhuanshengben("online-retry", "专升本 found → 网上验证 face mismatch, then match", true,
		awaitPre, tryFace, tryMatch)
	pathOnlineReviewOK = zhuankeOnline("online-review-ok", "专科, 3 failed tries → 人工核验 → county approves",
		tryFace, tryLiveness, tryFace, askReview, identityReview(true, false))
	pathOnlineReviewNo = zhuankeOnline("online-review-no", "专科, 3 failed tries → 人工核验 refused (province) → on-site",
		tryLiveness, tryFace, tryLiveness, askReview, identityReview(false, true), onsite)
	pathOnlineNotInRecords = zhuankeOnline("online-not-in-records", "专科, ID sequence 999: not_in_records → on-site",
		tryNotInRecords, onsite)
	pathOnlineWithdraw = zhuankeOnline("online-withdraw-review", "专科, 3 failed tries → 人工核验, withdrawn meanwhile",
		tryFace, tryFace, tryLiveness, askReview, withdrawFrom(status.IdentityReview))
	pathOnlineAnnul = zhuankeOnline("online-annul-review", "专科, 3 failed tries → 人工核验, annulled by the county",
		tryLiveness, tryLiveness, tryFace, askReview, annulFrom(false, status.IdentityReview))

	// Exam-area changes (考区变更) to another area (the plan's MoveTo): in
	// county review by the county office of the area, then decided by the
	// new area's county office (the old one's review is refused); pre-
	// registered by the provincial office, then confirmed at the new area's
	// desk; and a change by the county office racing the old area's desk.
	pathAreaCounty = zhuanshengben("area-county", "in county review, moved by the county → new county, desk", false,
		awaitReport, upload, changeArea(false, status.CountyReview), countyOK, provincialOK, onsite)
	pathAreaPre = path{Name: "area-pre", Label: "专科 pre-registered, moved by the province → new desk",
		Kind: workflows.KindNew, Level: "zhuanke", Steps: []step{submit, changeArea(true, status.PreRegistered), onsite}, Target: status.Completed}
	pathAreaRace = path{Name: "area-race", Label: "专科, a move racing the old desk's check: one wins → done",
		Kind: workflows.KindNew, Level: "zhuanke", Target: status.Completed,
		Steps: []step{submit, {Act: actAreaRace, From: []string{status.PreRegistered}, To: status.Completed}}}
)

// mix is the share of each path: registration i follows mix[i % len(mix)]
// (before shuffling), so that any len(mix) (37) consecutive ones cover
// every path (the race twice: either side may win).
var mix = []path{
	pathZhuanke, pathFound, pathLongest, pathCountyReject, pathProvincialReject, pathEnrolled,
	pathWithdrawCheck, pathWithdrawReport, pathWithdrawCounty, pathWithdrawProvincial,
	pathZhuanke, pathFound, pathLongest, pathEnrolled, pathCountyReject, pathProvincialReject,
	pathWithdrawFound, pathWithdrawZhuanke, pathWithdrawEnrolled,
	pathZhuanke, pathLongest, pathEnrolled,
	pathAnnulCheck, pathAnnulReport, pathAnnulCounty, pathAnnulRealPerson,
	pathOnlineMatch, pathOnlineRetry, pathOnlineReviewOK, pathOnlineReviewNo, pathOnlineNotInRecords,
	pathOnlineWithdraw, pathOnlineAnnul,
	pathAreaCounty, pathAreaPre, pathAreaRace, pathAreaRace,
}

// allPaths lists each path once, in report order, a path's Then after it.
func allPaths() []path {
	var out []path
	seen := map[string]bool{}
	for _, p := range mix {
		for q := &p; q != nil && !seen[q.Name]; q = q.Then {
			seen[q.Name] = true
			out = append(out, *q)
		}
	}
	return out
}

// areas are the exam areas registrations go to (staff of both exist).
var areas = []struct{ Code, District string }{{"0106", "420106"}, {"0102", "420102"}}

// staffAreas are the exam areas with a county office and a desk in the
// run: the areas registrations go to, and 0103, which they are only moved
// to (考区变更); its confirmation window differs from the others'.
var staffAreas = []string{"0106", "0102", "0103"}

// moves reports whether the path changes the exam area.
func (p path) moves() bool {
	return slices.ContainsFunc(p.Steps, func(st step) bool { return st.Act == actArea || st.Act == actAreaRace })
}

// plan is what one client will do: a path, and who the applicant is.
type plan struct {
	Index         int
	Path          path
	Person        person
	Area          string
	MajorCode     string
	DiplomaNumber string
	Phone         string
	Enrolments    []enrolment
	Verify        string // 在籍: the ticket number the applicant proves enrolment with
	Selected      string // 在籍: the ticket number selected to be re-activated
	Then          *plan  // the path's Then: the same person and application, another account
	Second        bool   // this is a plan's Then
	Face          int    // online verification: the sample face (identity.SamplePortrait's seed) of the applicant
	MoveTo        string // an exam-area change's new area (another of staffAreas)
}

// makePlans assigns n registrations to paths and makes up their applicants.
func makePlans(n int, rng *rand.Rand, year, sitting int) []*plan {
	folk := newPeople(rng)
	plans := make([]*plan, n)
	enrolledCount := 0
	for i := range plans {
		p := &plan{Index: i, Path: mix[i%len(mix)], Phone: phone(rng)}
		plans[i] = p
		area := areas[i%len(areas)]
		if p.Path.notInRecords() {
			p.Area, p.Person = area.Code, folk.notInRecords(area.District)
		} else {
			p.Area, p.Person = area.Code, folk.next(area.District)
		}
		if p.Path.moves() {
			others := slices.DeleteFunc(slices.Clone(staffAreas), func(a string) bool { return a == p.Area })
			p.MoveTo = others[rng.IntN(len(others))]
		}
		switch {
		case p.Path.Kind == workflows.KindEnrolled:
			p.Enrolments = enrolmentsOf(enrolledCount, area.Code, year, sitting)
			first, second := p.Enrolments[0].TicketNumber, p.Enrolments[1].TicketNumber
			p.Verify, p.Selected = first, second
			if enrolledCount%3 == 1 {
				p.Verify, p.Selected = second, first
			}
			enrolledCount++
		case p.Path.Level == "zhuanke":
			p.MajorCode = []string{"590201", "A020212"}[rng.IntN(2)]
		default:
			p.MajorCode = []string{"120402", "120201K", "030101K", "050101"}[rng.IntN(4)]
			p.DiplomaNumber = diplomaNumber(rng)
		}
	}
	rng.Shuffle(len(plans), func(i, j int) { plans[i], plans[j] = plans[j], plans[i] })
	for i, p := range plans {
		p.Index = i
		p.Face = i % identity.SampleSeeds
		if p.Path.Then != nil {
			then := *p
			then.Path, then.Then, then.Second = *p.Path.Then, nil, true
			p.Then = &then
		}
	}
	return plans
}

// steps counts the steps of a plan and of its Then.
func (p *plan) steps() int {
	if p.Then != nil {
		return len(p.Path.Steps) + p.Then.steps()
	}
	return len(p.Path.Steps)
}

func (p *plan) String() string {
	if p.Second {
		return fmt.Sprintf("#%d' (%s)", p.Index, p.Path.Name)
	}
	return fmt.Sprintf("#%d (%s)", p.Index, p.Path.Name)
}
