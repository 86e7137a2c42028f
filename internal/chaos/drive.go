package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"zikao/internal/demo"
	"zikao/internal/status"
	"zikao/workflows"
)

// decision is a decision a client got a success for: its Workflow Update,
// its Idempotency-Key and the history entry it must have made.
type decision struct {
	Update    string `json:"update"`
	Key       string `json:"key"`
	AccountID int64  `json:"account_id"`
	ByRole    string `json:"by_role"`
	To        string `json:"to"`
	Attempts  int    `json:"attempts"`
	// Inferred: the answer was a 409 after an attempt without an answer,
	// the registration having moved on (the README's idempotency section).
	Inferred bool `json:"inferred,omitempty"`
	// An online try's: the identity service's result, the SHA-256 of the
	// portrait sent, and how many challenges it took (more than one after
	// a 409 challenge_expired).
	Result     string `json:"result,omitempty"`
	Portrait   string `json:"portrait_sha256,omitempty"`
	Challenges int    `json:"challenges,omitempty"`
	// An exam-area change's (考区变更): the area it moved the registration to.
	Area string `json:"exam_area_code,omitempty"`
}

// run is one registration as its client drove it.
type run struct {
	Plan      *plan      `json:"-"`
	Path      string     `json:"path"`
	ID        string     `json:"registration_id"`
	AccountID int64      `json:"account_id"`
	Decisions []decision `json:"decisions"`
	Ticket    string     `json:"ticket_number,omitempty"` // from the completing step's answer
	Done      bool       `json:"done"`                    // every step succeeded
	Error     string     `json:"error,omitempty"`         // why the client stopped
	Then      *run       `json:"then,omitempty"`          // the path's Then: the real person's registration
	// After an exam-area change: what the client saw of the inboxes and
	// desks, and of the old office's decision (area.go).
	Looks []look `json:"looks,omitempty"`
	Race  *race  `json:"race,omitempty"` // the area-race path's race
}

// newRun is the run of a plan before it starts, with its Then's.
func newRun(p *plan, why string) *run {
	r := &run{Plan: p, Path: p.Path.Name, Error: why}
	if p.Then != nil {
		r.Then = newRun(p.Then, why)
	}
	return r
}

// flatten lists the runs and their Then runs.
func flatten(runs []*run) []*run {
	var out []*run
	for _, r := range runs {
		for ; r != nil; r = r.Then {
			out = append(out, r)
		}
	}
	return out
}

// view is the part of the registration view the clients read.
type view struct {
	ID              string  `json:"registration_id"`
	Status          string  `json:"status"`
	TicketNumber    *string `json:"ticket_number"`
	AnnulmentReason *string `json:"annulment_reason"`
	ExamAreaCode    string  `json:"exam_area_code"`
	Online          struct {
		Available  bool    `json:"available"`
		TriesLeft  int     `json:"tries_left"`
		LastResult *string `json:"last_result"`
	} `json:"online_verification"`
}

// staffCallers are the staff accounts' sessions, by role and exam area.
type staffCallers struct {
	county     map[string]caller
	onsite     map[string]caller
	provincial caller
}

// withRNG copies the sessions for one client, with its own jitter source
// (a rand.Rand serves one goroutine).
func (s staffCallers) withRNG(rng *rand.Rand) staffCallers {
	out := staffCallers{county: map[string]caller{}, onsite: map[string]caller{}, provincial: s.provincial}
	out.provincial.rng = rng
	for area, c := range s.county {
		c.rng = rng
		out.county[area] = c
	}
	for area, c := range s.onsite {
		c.rng = rng
		out.onsite[area] = c
	}
	return out
}

// driver runs the clients.
type driver struct {
	api   *apiClient
	stats *stats
	staff staffCallers
	run   string // a tag making login names unique to the run
}

// logInStaff opens one session per staff account.
func (d *driver) logInStaff(ctx context.Context) error {
	d.staff = staffCallers{county: map[string]caller{}, onsite: map[string]caller{}}
	logins := append(append([]demo.Staff(nil), demo.StaffAccounts...), extraStaff...)
	for _, s := range logins {
		c, err := d.logIn(ctx, s.LoginName, demo.Password, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			return fmt.Errorf("staff login: %w", err)
		}
		switch s.Role {
		case "county_reviewer":
			d.staff.county[s.Area] = c
		case "onsite_operator":
			d.staff.onsite[s.Area] = c
		case "provincial_reviewer":
			d.staff.provincial = c
		}
	}
	return nil
}

// logIn opens a session and learns the account's id.
func (d *driver) logIn(ctx context.Context, login, password string, rng *rand.Rand) (caller, error) {
	c := caller{api: d.api, rng: rng}
	out, err := c.send(ctx, jsonRequest(http.MethodPost, "/sessions", map[string]string{"login_name": login, "password": password}, uuid.NewString()), nil)
	if err != nil {
		return c, err
	}
	var s struct {
		Token string `json:"token"`
	}
	if err := jsonDecode(out.answer.body, &s); err != nil {
		return c, err
	}
	c.token = s.Token
	var me struct {
		AccountID int64 `json:"account_id"`
	}
	if err := c.get(ctx, "/accounts/me", &me); err != nil {
		return c, err
	}
	c.accountID = me.AccountID
	return c, nil
}

// agent is one client at work on one registration: the applicant, and
// the staff sessions with this client's own backoff jitter.
type agent struct {
	d         *driver
	applicant caller
	staff     staffCallers
	run       *run
	rng       *rand.Rand
	tries     int    // online tries made (answered 200), for files unique to each
	area      string // the registration's exam area as the client knows it (the plan's, until a change)
}

// drive runs every plan with at most concurrency clients at a time.
func (d *driver) drive(ctx context.Context, plans []*plan, concurrency int, seed uint64) []*run {
	runs := make([]*run, len(plans))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				runs[i] = d.driveOne(ctx, plans[i], rand.New(rand.NewPCG(seed, uint64(i)+1)))
			}
		}()
	}
	for i := range plans {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	for i, r := range runs {
		if r == nil {
			runs[i] = newRun(plans[i], fmt.Sprint("not started: ", ctx.Err()))
		}
	}
	return runs
}

// driveOne drives a plan and then its Then, if it has one: the second
// applicant signs up at the start, so that their submission follows the
// step before it at once.
func (d *driver) driveOne(ctx context.Context, p *plan, rng *rand.Rand) *run {
	r := newRun(p, "")
	c := &agent{d: d, run: r, staff: d.staff.withRNG(rng), rng: rng, area: p.Area}
	var then *agent
	if r.Then != nil {
		then = &agent{d: d, run: r.Then, staff: c.staff, rng: rng, area: p.Then.Area}
		then.run.Error = "not started: the path before it did not finish"
	}
	if err := c.signUp(ctx); err != nil {
		r.Error = "sign-up: " + err.Error()
		return r
	}
	if then != nil {
		if err := then.signUp(ctx); err != nil {
			then.run.Error = "sign-up: " + err.Error()
			then = nil
		}
	}
	if !c.follow(ctx) || then == nil {
		return r
	}
	then.run.Error = ""
	then.follow(ctx)
	return r
}

// follow runs the steps of the agent's path; it reports whether every one
// succeeded.
func (c *agent) follow(ctx context.Context) bool {
	p := c.run.Plan
	for i, st := range p.Path.Steps {
		if err := c.think(ctx, st); err != nil {
			c.run.Error = err.Error()
			return false
		}
		if err := c.do(ctx, st); err != nil {
			c.run.Error = fmt.Sprintf("step %d of %s: %v", i+1, p.Path.Name, err)
			return false
		}
		c.d.stats.steps.Add(1)
	}
	c.run.Done = true
	return true
}

// think pauses before a step, up to a quarter of a second, as people (and
// offices) take a moment to read the page; not before a step made at once.
func (c *agent) think(ctx context.Context, st step) error {
	if st.AtOnce {
		return nil
	}
	return c.applicant.pause(ctx, time.Duration(c.rng.IntN(250))*time.Millisecond)
}

// signUp creates the applicant's account and logs in. A sign-up retried
// after no answer may find its own account made: 409 login_name_taken.
func (c *agent) signUp(ctx context.Context) error {
	login := fmt.Sprintf("applicant%d.%s@example.com", c.run.Plan.Index, c.d.run)
	if c.run.Plan.Second {
		login = fmt.Sprintf("applicant%db.%s@example.com", c.run.Plan.Index, c.d.run)
	}
	password := "secret-" + uuid.NewString()[:8]
	body := map[string]any{"login_name": login, "password": password, "security_question_id": 1, "security_answer": "王小花"}
	sign := caller{api: c.d.api, rng: c.rng}
	_, err := sign.send(ctx, jsonRequest(http.MethodPost, "/accounts", body, uuid.NewString()), func(a answer, ambiguous bool) verdict {
		if ambiguous && a.code() == "login_name_taken" {
			return wasApplied
		}
		return notApplying
	})
	if err != nil {
		return err
	}
	c.applicant, err = c.d.logIn(ctx, login, password, c.rng)
	c.run.AccountID = c.applicant.accountID
	return err
}

// do runs one step.
func (c *agent) do(ctx context.Context, st step) error {
	switch st.Act {
	case actSubmit:
		return c.submit(ctx)
	case actAwait:
		return c.await(ctx, st.To)
	case actUpload:
		return c.upload(ctx, st)
	case actCounty, actProvincial:
		return c.review(ctx, st)
	case actOnsite:
		return c.onsite(ctx, st)
	case actWithdraw:
		return c.decide(ctx, c.applicant, st, workflows.UpdateWithdraw, workflows.ByApplicant,
			request{method: http.MethodPost, path: c.regPath("/withdraw")}, http.StatusAccepted)
	case actAnnul:
		return c.annul(ctx, st)
	case actTry:
		return c.tryOnline(ctx, st)
	case actAskReview:
		return c.decide(ctx, c.applicant, st, workflows.UpdateRequestIdentityReview, workflows.ByApplicant,
			request{method: http.MethodPost, path: c.regPath("/identity-review-request")}, http.StatusAccepted)
	case actIdentityReview:
		return c.identityReview(ctx, st)
	case actArea:
		return c.changeArea(ctx, st)
	case actAreaRace:
		return c.areaRace(ctx, st)
	}
	return fmt.Errorf("unknown step %d", st.Act)
}

func (c *agent) regPath(suffix string) string { return "/registrations/" + c.run.ID + suffix }

// submit sends the registration. Retried after no answer, it is answered
// 202 with the registration the key made (or 409 registration_in_progress
// when the retry raced its own first attempt).
func (c *agent) submit(ctx context.Context) error {
	p := c.run.Plan
	out, err := c.applicant.send(ctx, jsonRequest(http.MethodPost, "/registrations", submission(p), uuid.NewString()),
		func(a answer, ambiguous bool) verdict {
			// The ID number's registration of another account is never this
			// one's own attempt (the real person's, while the annulled one
			// would still hold the ID number).
			if ambiguous && a.code() == "registration_in_progress" && !bytes.Contains(a.body, []byte("another account")) {
				return wasApplied
			}
			return notApplying
		})
	if err != nil {
		return err
	}
	var v view
	if out.inferred {
		err = c.applicant.get(ctx, "/registrations/mine", &v)
	} else {
		err = jsonDecode(out.answer.body, &v)
	}
	if err != nil {
		return err
	}
	if v.ID == "" {
		return errors.New("the submission's answer has no registration_id")
	}
	c.run.ID = v.ID
	if first := firstStatus(p.Path); out.answer.status == http.StatusAccepted && !out.ambiguous && v.Status != first {
		c.d.stats.anomaly("registration %s: submission answered 202 with status %s, want %s", v.ID, v.Status, first)
	}
	return nil
}

func firstStatus(p path) string {
	if p.Level == "zhuanshengben" {
		return status.DiplomaCheck
	}
	return status.PreRegistered
}

// submission is the body of POST /registrations for a plan.
func submission(p *plan) map[string]any {
	if p.Path.Kind == workflows.KindEnrolled {
		return map[string]any{"kind": "enrolled", "agree_terms": true, "name": p.Person.Name, "id_number": p.Person.IDNumber,
			"verify_ticket_number": p.Verify, "selected_ticket_number": p.Selected, "personal": map[string]any{"phone": p.Phone}}
	}
	app := map[string]any{"major_type": "social", "level": p.Path.Level, "major_code": p.MajorCode, "exam_area_code": p.Area}
	if p.Path.Level == "zhuanshengben" {
		app["prior_school"], app["prior_diploma_number"] = "湖北大学", p.DiplomaNumber
	}
	return map[string]any{"kind": "new", "agree_terms": true,
		"personal": map[string]any{"name": p.Person.Name, "id_number": p.Person.IDNumber, "gender": p.Person.Gender,
			"birth_date": p.Person.Birth.Format(time.DateOnly), "ethnicity": "汉族", "phone": p.Phone, "address": "湖北省武汉市"},
		"application": app}
}

// await polls the registration until it reaches want; only the diploma
// check may come before it.
func (c *agent) await(ctx context.Context, want string) error {
	deadline := time.Now().Add(c.d.api.timeout)
	for {
		var v view
		if err := c.applicant.get(ctx, c.regPath(""), &v); err != nil {
			return err
		}
		switch {
		case v.Status == want:
			return nil
		case v.Status != status.DiplomaCheck:
			return fmt.Errorf("registration %s went to %s, want %s", c.run.ID, v.Status, want)
		case time.Now().After(deadline):
			return fmt.Errorf("%w: registration %s still %s after %s, want %s", errGaveUp, c.run.ID, v.Status, c.d.api.timeout, want)
		}
		if err := c.applicant.pause(ctx, c.applicant.jitter(150*time.Millisecond)); err != nil {
			return err
		}
	}
}

// upload sends a diploma certification report (a small PDF, different
// each time) with a verification code.
func (c *agent) upload(ctx context.Context, st step) error {
	pdf := fmt.Appendf(nil, "%%PDF-1.4\n%% report %s\n1 0 obj<<>>endobj\ntrailer<<>>\n%%%%EOF\n", uuid.NewString())
	code := fmt.Sprintf("%012X", c.rng.Uint64()&0xFFFFFFFFFFFF)
	r, err := multipartRequest(c.regPath("/diploma-report"), map[string]string{"verification_code": code}, "file", "report.pdf", pdf)
	if err != nil {
		return err
	}
	return c.decide(ctx, c.applicant, st, workflows.UpdateUploadReport, workflows.ByApplicant, r, http.StatusAccepted)
}

// review sends a county or provincial decision by a reviewer in scope.
func (c *agent) review(ctx context.Context, st step) error {
	body := map[string]any{"approved": true}
	if !st.Approve {
		body = map[string]any{"approved": false, "reason": "报告信息不清晰，请重新上传"}
	}
	reviewer, update, by, route := c.staff.provincial, workflows.UpdateProvincialReview, workflows.ByProvincialReviewer, "/provincial-review"
	if st.Act == actCounty {
		reviewer, update, by, route = c.staff.county[c.area], workflows.UpdateCountyReview, workflows.ByCountyReviewer, "/county-review"
	}
	return c.decide(ctx, reviewer, st, update, by, jsonRequest(http.MethodPost, c.regPath(route), body, ""), http.StatusOK)
}

// annul is the office's annulment (作废), by the county reviewer of the
// registration's exam area or the provincial reviewer, with a reason.
func (c *agent) annul(ctx context.Context, st step) error {
	reviewer, by := c.staff.county[c.area], workflows.ByCountyReviewer
	if st.Provincial {
		reviewer, by = c.staff.provincial, workflows.ByProvincialReviewer
	}
	r := jsonRequest(http.MethodPost, c.regPath("/annul"), map[string]string{"reason": annulReason}, "")
	return c.decide(ctx, reviewer, st, workflows.UpdateAnnul, by, r, http.StatusOK)
}

// onsite is the on-site confirmation at the desk of the registration's
// area: the operator finds the registration by the ID number read from the
// card, then confirms it with a photo.
func (c *agent) onsite(ctx context.Context, st step) error {
	operator := c.staff.onsite[c.area]
	if err := c.findOnsite(ctx, operator); err != nil {
		return err
	}
	r, err := c.onsiteRequest()
	if err != nil {
		return err
	}
	return c.decide(ctx, operator, st, workflows.UpdateOnsiteCheck, workflows.ByOnsiteOperator, r, http.StatusOK)
}

// onsiteRequest is the on-site check's form: the ID card as read, and a
// photo (a few bytes of JPEG, different each time).
func (c *agent) onsiteRequest() (request, error) {
	p := c.run.Plan
	photo := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, []byte(uuid.NewString())...)
	return multipartRequest(c.regPath("/onsite-check"), map[string]string{"id_card_number": p.Person.IDNumber, "name": p.Person.Name},
		"photo", "photo.jpg", photo)
}

// listed tells whether the operator's look-up by ID number lists the
// registration (pre-registered in the operator's area).
func (c *agent) listed(ctx context.Context, operator caller) (bool, error) {
	var list struct {
		Registrations []view `json:"registrations"`
	}
	if err := operator.get(ctx, "/onsite/registrations?id_number="+url.QueryEscape(c.run.Plan.Person.IDNumber), &list); err != nil {
		return false, err
	}
	return slices.ContainsFunc(list.Registrations, func(v view) bool { return v.ID == c.run.ID }), nil
}

// findOnsite polls the operator's look-up by ID number until it lists the
// registration (the read model shows it pre-registered).
func (c *agent) findOnsite(ctx context.Context, operator caller) error {
	deadline := time.Now().Add(c.d.api.timeout)
	for {
		found, err := c.listed(ctx, operator)
		if err != nil {
			return err
		}
		if found {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the on-site look-up never listed registration %s", errGaveUp, c.run.ID)
		}
		if err := operator.pause(ctx, operator.jitter(200*time.Millisecond)); err != nil {
			return err
		}
	}
}

// decide sends a decision with a fresh Idempotency-Key (the same on every
// retry) and logs it once it succeeded. A 409 is judged by the status the
// registration shows: still where the step starts, the workflow has not
// caught up yet (send again); where the step leads, after an attempt
// without answer, that attempt was applied; anything else is a failure.
func (c *agent) decide(ctx context.Context, by caller, st step, update, byRole string, r request, okStatus int) error {
	r.key = uuid.NewString()
	out, err := by.send(ctx, r, func(a answer, ambiguous bool) verdict { return c.judgeConflict(ctx, c.applicant, st, a, ambiguous) })
	if err != nil {
		return err
	}
	return c.logDecision(by, st, update, byRole, r.key, out, okStatus)
}

// logDecision logs a decision that succeeded (out) and checks its answer
// shows the step: its status, an annulment's reason, an area change's new
// area, a completion's ticket number.
func (c *agent) logDecision(by caller, st step, update, byRole, key string, out outcome, okStatus int) error {
	d := decision{Update: update, Key: key, AccountID: by.accountID, ByRole: byRole, To: st.To, Attempts: out.attempts, Inferred: out.inferred}
	if st.Act == actArea {
		d.Area = c.run.Plan.MoveTo
	}
	c.run.Decisions = append(c.run.Decisions, d)
	if out.inferred {
		return nil
	}
	var v view
	if err := jsonDecode(out.answer.body, &v); err != nil {
		return err
	}
	if out.answer.status != okStatus || v.Status != st.To {
		c.d.stats.anomaly("registration %s: %s answered %d with status %s, want %d with %s", c.run.ID, update, out.answer.status, v.Status, okStatus, st.To)
	}
	if st.Act == actAnnul && (v.AnnulmentReason == nil || *v.AnnulmentReason != annulReason) {
		c.d.stats.anomaly("registration %s: the annulment answered without its reason", c.run.ID)
	}
	if st.Act == actArea && v.ExamAreaCode != d.Area {
		c.d.stats.anomaly("registration %s: the exam-area change to %s answered exam area %s", c.run.ID, d.Area, v.ExamAreaCode)
	}
	if st.To == status.Completed {
		return c.checkTicket(v)
	}
	return nil
}

// judgeConflict tells what a 409 to a decision means, reading the
// registration as reader.
func (c *agent) judgeConflict(ctx context.Context, reader caller, st step, a answer, ambiguous bool) verdict {
	switch a.code() {
	case "not_awaiting_report", "not_awaiting_review", "not_pre_registered", "registration_closed":
	default:
		return notApplying // identity, window, validation: no retry mends those
	}
	var v view
	if err := reader.get(ctx, c.regPath(""), &v); err != nil {
		return retrySame
	}
	switch {
	case slices.Contains(st.From, v.Status):
		return retrySame
	case v.Status == st.To && ambiguous:
		return wasApplied
	}
	return notApplying
}

// checkTicket checks the completing step's answer carries the ticket number:
// for an enrolled applicant, the selected one.
func (c *agent) checkTicket(v view) error {
	if v.TicketNumber == nil || *v.TicketNumber == "" {
		return fmt.Errorf("registration %s completed without a ticket number in the answer", c.run.ID)
	}
	c.run.Ticket = *v.TicketNumber
	if p := c.run.Plan; p.Path.Kind == workflows.KindEnrolled && c.run.Ticket != p.Selected {
		c.d.stats.anomaly("registration %s (enrolled) completed with ticket %s, not the selected one", c.run.ID, c.run.Ticket)
	}
	return nil
}

// multipartRequest builds a multipart form with fields and one file.
func multipartRequest(path string, fields map[string]string, fileField, fileName string, file []byte) (request, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			return request{}, err
		}
	}
	fw, err := w.CreateFormFile(fileField, fileName)
	if err == nil {
		_, err = fw.Write(file)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return request{}, fmt.Errorf("build form: %w", err)
	}
	return request{method: http.MethodPost, path: path, body: buf.Bytes(), contentType: w.FormDataContentType()}, nil
}
