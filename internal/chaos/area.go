package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"zikao/internal/status"
	"zikao/workflows"
)

// Exam-area changes (考区变更) as the clients drive them: the office moves a
// registration to the plan's MoveTo, and the client looks where it went —
// waiting for the county review, the county inbox of every staffed area
// (its new area's holds it, no other), and the old area's county office
// approving it anyway (refused: 403 forbidden); pre-registered, the look-up
// of every staffed area's desk (its new area's lists it, no other) — then
// goes on in the new area. The race: the county office of the area moves a
// pre-registered registration while the area's desk confirms it, both sent
// at once (one up to 30 ms ahead, either side), each retried as usual with
// its own key: exactly one wins.

// look is one thing a client saw of where a registration is after an
// exam-area change: what it looked at, what it must see, what it saw.
type look struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

func (l look) ok() bool { return l.Want == l.Got }

// race is how the race of an area-race path ended.
type race struct {
	From   string `json:"from"`
	To     string `json:"to"`
	LeadMS int64  `json:"change_lead_ms"` // how far the change was sent ahead of the check (negative: after it)
	Change string `json:"change"`         // the change's last answer
	Check  string `json:"onsite_check"`   // the old desk's check's last answer
	// How long after the first of them was sent each was answered at last.
	ChangeMS int64 `json:"change_answered_ms"`
	CheckMS  int64 `json:"onsite_check_answered_ms"`
	// Winner: raceChange or raceOnsite; "" when the answers were not one
	// of the two allowed pairs.
	Winner string `json:"winner"`
}

// Winners of a race.
const (
	raceChange = "change" // the change 200, the old desk's check 403 forbidden
	raceOnsite = "onsite" // the old desk's check 200, the change 409 registration_closed
)

// maxLead is how far ahead one side of a race may be sent: about the time
// the API takes to bring either to the workflow, so that neither side is
// favoured and both outcomes occur.
const maxLead = 30 * time.Millisecond

// changeArea is an exam-area change by the county office of the
// registration's current area (or the provincial office), with areaReason;
// then the client looks where the registration went.
func (c *agent) changeArea(ctx context.Context, st step) error {
	reviewer, by := c.staff.county[c.area], workflows.ByCountyReviewer
	if st.Provincial {
		reviewer, by = c.staff.provincial, workflows.ByProvincialReviewer
	}
	old := c.area
	if err := c.decide(ctx, reviewer, st, workflows.UpdateChangeExamArea, by, c.areaRequest(), http.StatusOK); err != nil {
		return err
	}
	c.area = c.run.Plan.MoveTo
	return c.lookAround(ctx, st.To, old)
}

// areaRequest is the change to the plan's MoveTo (its key set when sent).
func (c *agent) areaRequest() request {
	return jsonRequest(http.MethodPost, c.regPath("/exam-area"),
		map[string]string{"exam_area_code": c.run.Plan.MoveTo, "reason": areaReason}, "")
}

// saw logs a look.
func (c *agent) saw(what, want, got string) {
	c.run.Looks = append(c.run.Looks, look{What: what, Want: want, Got: got})
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// lookAround looks where the registration is after its change from old
// (the read model is written before the change is answered, so nothing is
// polled): waiting for the county review, in the county inbox of its area
// and of no other, and the old area's office's approval refused;
// pre-registered, listed by its area's desk and by no other.
func (c *agent) lookAround(ctx context.Context, waiting, old string) error {
	switch waiting {
	case status.CountyReview:
		for _, a := range staffAreas {
			in, err := c.inInbox(ctx, c.staff.county[a])
			if err != nil {
				return err
			}
			c.saw("county inbox of "+a, yesNo(a == c.area, "holds it", "does not hold it"), yesNo(in, "holds it", "does not hold it"))
		}
		return c.oldOfficeDecides(ctx, old)
	case status.PreRegistered:
		for _, a := range staffAreas {
			found, err := c.listed(ctx, c.staff.onsite[a])
			if err != nil {
				return err
			}
			c.saw("desk look-up of "+a, yesNo(a == c.area, "lists it", "does not list it"), yesNo(found, "lists it", "does not list it"))
		}
	}
	return nil
}

// inInbox tells whether the county reviewer's inbox (every page) holds
// the registration.
func (c *agent) inInbox(ctx context.Context, reviewer caller) (bool, error) {
	after := ""
	for {
		q := "/reviews?stage=county&limit=200"
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		var page struct {
			Reviews []view  `json:"reviews"`
			Next    *string `json:"next"`
		}
		if err := reviewer.get(ctx, q, &page); err != nil {
			return false, err
		}
		if slices.ContainsFunc(page.Reviews, func(v view) bool { return v.ID == c.run.ID }) {
			return true, nil
		}
		if page.Next == nil || *page.Next == "" {
			return false, nil
		}
		after = *page.Next
	}
}

// oldOfficeDecides sends the old area's county office's approval after the
// change (with a key of its own, sent again after no answer or a 5xx): it
// must be refused with 403 forbidden, and nothing applied.
func (c *agent) oldOfficeDecides(ctx context.Context, old string) error {
	r := jsonRequest(http.MethodPost, c.regPath("/county-review"), map[string]any{"approved": true}, uuid.NewString())
	office := c.staff.county[old]
	out, err := office.send(ctx, r, nil)
	if ctx.Err() != nil || errors.Is(err, errGaveUp) {
		return err
	}
	c.saw("county review by the office of "+old+", the old area", "403 forbidden", answerOf(out, err))
	return nil
}

// answerOf names how a request ended: its last answer, or the error when
// it had none.
func answerOf(out outcome, err error) string {
	switch {
	case out.inferred:
		return "applied (inferred from " + out.answer.String() + ")"
	case err != nil && out.answer.status == 0:
		return err.Error()
	}
	return out.answer.String()
}

// areaRace is the race of the area-race path: the county office of the
// registration's area moves it to the plan's MoveTo while the area's desk
// confirms it. Exactly one wins: the change (200; the check refused 403
// forbidden, its registration moved away) — then the client looks around
// and confirms it at the new area's desk — or the check (200, completed
// with a ticket of the old area; the change refused 409 registration_closed).
func (c *agent) areaRace(ctx context.Context, st step) error {
	p, old := c.run.Plan, c.area
	office, desk, reader := c.staff.county[old], c.staff.onsite[old], c.applicant
	if err := c.findOnsite(ctx, desk); err != nil {
		return err
	}
	// Each side its own jitter source: a rand.Rand serves one goroutine.
	office.rng = rand.New(rand.NewPCG(c.rng.Uint64(), 1))
	desk.rng = rand.New(rand.NewPCG(c.rng.Uint64(), 2))
	reader.rng = rand.New(rand.NewPCG(c.rng.Uint64(), 3))
	change := c.areaRequest()
	change.key = uuid.NewString()
	check, err := c.onsiteRequest()
	if err != nil {
		return err
	}
	check.key = uuid.NewString()
	lead := time.Duration(c.rng.Int64N(int64(2*maxLead)+1)) - maxLead
	moveStep := step{Act: actArea, From: st.From, To: status.PreRegistered}
	checkStep := step{Act: actOnsite, From: st.From, To: status.Completed}

	var moved, checked outcome
	var moveErr, checkErr error
	var moveTook, checkTook time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() {
		defer wg.Done()
		if moveErr = office.pause(ctx, max(-lead, 0)); moveErr == nil {
			moved, moveErr = office.send(ctx, change, func(answer, bool) verdict { return notApplying })
		}
		moveTook = time.Since(start)
	}()
	go func() {
		defer wg.Done()
		if checkErr = desk.pause(ctx, max(lead, 0)); checkErr == nil {
			checked, checkErr = desk.send(ctx, check, func(a answer, ambiguous bool) verdict {
				return c.judgeConflict(ctx, reader, checkStep, a, ambiguous)
			})
		}
		checkTook = time.Since(start)
	}()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rc := &race{From: old, To: p.MoveTo, LeadMS: lead.Milliseconds(), Change: answerOf(moved, moveErr), Check: answerOf(checked, checkErr),
		ChangeMS: moveTook.Milliseconds(), CheckMS: checkTook.Milliseconds()}
	c.run.Race = rc
	refused := func(out outcome, err error, code int, name string) bool {
		return err != nil && !errors.Is(err, errGaveUp) && out.answer.err == nil && out.answer.status == code && out.answer.code() == name
	}
	switch {
	case moveErr == nil && refused(checked, checkErr, http.StatusForbidden, "forbidden"):
		rc.Winner = raceChange
		if err := c.logDecision(office, moveStep, workflows.UpdateChangeExamArea, workflows.ByCountyReviewer, change.key, moved, http.StatusOK); err != nil {
			return err
		}
		c.area = p.MoveTo
		if err := c.lookAround(ctx, status.PreRegistered, old); err != nil {
			return err
		}
		return c.onsite(ctx, checkStep)
	case checkErr == nil && refused(moved, moveErr, http.StatusConflict, "registration_closed"):
		rc.Winner = raceOnsite
		return c.logDecision(desk, checkStep, workflows.UpdateOnsiteCheck, workflows.ByOnsiteOperator, check.key, checked, http.StatusOK)
	}
	return fmt.Errorf("registration %s: the race ended with the change answered %s and the old desk's check %s; want 200 and 403 forbidden, or 409 registration_closed and 200",
		c.run.ID, rc.Change, rc.Check)
}
