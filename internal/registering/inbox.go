package registering

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"zikao/internal/accounts"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// Inbox paging: the default and the largest page.
const (
	DefaultInboxLimit = 50
	MaxInboxLimit     = 200
)

// InboxQuery asks for a page of a reviewer's inbox.
type InboxQuery struct {
	Stage string // county, provincial or identity; "" is the reviewer's own report review
	Area  string // one exam area; "" is every one in the reviewer's scope
	Limit int    // 1 to MaxInboxLimit; 0 is DefaultInboxLimit
	After string // the Next of the page before; "" for the first page
}

// InboxPage is one page of an inbox: the registrations waiting, oldest
// first (each with StageSince, the time it entered the stage, and Overdue),
// how many wait in all within the query's scope, and the After of the next
// page ("" on the last one).
type InboxPage struct {
	Items []registrations.Registration
	Total int
	Next  string
}

var areaCode = regexp.MustCompile(`^[0-9]{4}$`)

// stageStatus is the status a registration waits in at each stage of review.
var stageStatus = map[string]string{
	StageCounty:     status.CountyReview,
	StageProvincial: status.ProvincialReview,
	StageIdentity:   status.IdentityReview,
}

// Inbox lists a page of the registrations waiting at a review stage within
// the reviewer's scope, oldest first by the time they entered the stage: a
// county reviewer sees the county stage and the manual identity checks of
// the own exam area, a provincial reviewer the provincial stage and the
// manual checks of every area, or of one (Area), and the county stage too. Pages follow each
// other by position (InboxPage.Next), so a decision between two pages
// neither repeats nor skips a registration.
func (s *Service) Inbox(ctx context.Context, who accounts.Account, q InboxQuery) (InboxPage, error) {
	page := InboxPage{Items: []registrations.Registration{}}
	county := who.Role == accounts.RoleCountyReviewer
	if !county && who.Role != accounts.RoleProvincialReviewer {
		return page, refuse(CodeForbidden)
	}
	if q.Stage == "" {
		q.Stage = ReviewStage(who.Role)
	}
	st := stageStatus[q.Stage]
	f := Fields{}
	if st == "" {
		f.Add("stage", "审核环节须为区考办（county）、省考办（provincial）或人工核验（identity）", "stage must be county, provincial or identity")
	}
	if q.Limit == 0 {
		q.Limit = DefaultInboxLimit
	}
	if q.Limit < 1 || q.Limit > MaxInboxLimit {
		f.Add("limit", "每页条数须为1至200的整数", "limit must be a whole number from 1 to 200")
	}
	after, ok := decodeCursor(q.After)
	if !ok {
		f.Add("after", "翻页位置无效，请从第一页重新开始", "after is not a position this list gave; start again from the first page")
	}
	if q.Area != "" && !areaCode.MatchString(q.Area) {
		f.Add("exam_area", "考区代码须为4位数字", "exam_area must be a 4-digit exam area code")
	}
	if err := f.Err(); err != nil {
		return page, err
	}
	if county && (q.Stage == StageProvincial || (q.Area != "" && q.Area != who.Area())) {
		return page, refuse(CodeForbidden)
	}
	if county {
		q.Area = who.Area()
	}
	regs, total, err := s.Registrations.WaitingPage(ctx,
		registrations.PageQuery{Status: st, Area: q.Area, Limit: q.Limit + 1, After: after})
	if err != nil {
		return page, unavailable(err)
	}
	if len(regs) > q.Limit {
		regs = regs[:q.Limit]
		last := regs[len(regs)-1]
		page.Next = encodeCursor(registrations.Position{Since: last.StageSince, ID: last.ID})
	}
	cutoff := time.Now().Add(-s.OverdueAfter)
	for i := range regs {
		regs[i].Overdue = regs[i].StageSince.Before(cutoff)
	}
	page.Items, page.Total = regs, total
	return page, nil
}

// A cursor is the position of a page's last registration, base64url of
// "<stage_since, RFC 3339 with nanoseconds>|<registration id>".
func encodeCursor(p registrations.Position) string {
	return base64.RawURLEncoding.EncodeToString([]byte(p.Since.UTC().Format(time.RFC3339Nano) + "|" + p.ID))
}

// decodeCursor reads a cursor; "" is the start (nil, true).
func decodeCursor(s string) (*registrations.Position, bool) {
	if s == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	since, id, found := strings.Cut(string(raw), "|")
	t, err := time.Parse(time.RFC3339Nano, since)
	if !found || err != nil || uuid.Validate(id) != nil || t.Year() < 2000 || t.Year() > 9999 {
		return nil, false
	}
	return &registrations.Position{Since: t, ID: id}, true
}

// OverdueReviews counts the overdue reviews (waiting longer than
// OverdueAfter) per exam area and stage, for reviewers: a county reviewer's
// own exam area (either stage), every area for a provincial reviewer. Areas
// without overdue reviews are left out.
func (s *Service) OverdueReviews(ctx context.Context, who accounts.Account) ([]registrations.Overdue, error) {
	var area string
	switch who.Role {
	case accounts.RoleCountyReviewer:
		area = who.Area()
	case accounts.RoleProvincialReviewer:
	default:
		return nil, refuse(CodeForbidden)
	}
	out, err := s.Registrations.OverdueReviews(ctx, area, time.Now().Add(-s.OverdueAfter))
	return out, unavailable(err)
}

// FindByIDNumber lists the registrations of an ID number in any status,
// newest first, for staff who look a person up: reviewers (county: the own
// exam area; provincial: every area) and on-site operators (the own area).
func (s *Service) FindByIDNumber(ctx context.Context, who accounts.Account, idNumber string) ([]registrations.Registration, error) {
	var area string
	switch who.Role {
	case accounts.RoleCountyReviewer, accounts.RoleOnsiteOperator:
		area = who.Area()
	case accounts.RoleProvincialReviewer:
	default:
		return nil, refuse(CodeForbidden)
	}
	f := Fields{}
	id := f.IDNumber("id_number", idNumber)
	if err := f.Err(); err != nil {
		return nil, err
	}
	regs, err := s.Registrations.ByIDNumber(ctx, id.String(), area)
	return regs, unavailable(err)
}
