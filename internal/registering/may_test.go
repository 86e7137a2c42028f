package registering_test

import (
	"testing"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// May: who may take which step on a registration in which state.
func TestMay(t *testing.T) {
	area, other := "0106", "0102"
	now := time.Now()
	applicant := accounts.Account{ID: 7, Role: accounts.RoleApplicant}
	stranger := accounts.Account{ID: 8, Role: accounts.RoleApplicant}
	county := accounts.Account{ID: 9, Role: accounts.RoleCountyReviewer, ExamAreaCode: &area}
	otherCounty := accounts.Account{ID: 10, Role: accounts.RoleCountyReviewer, ExamAreaCode: &other}
	province := accounts.Account{ID: 11, Role: accounts.RoleProvincialReviewer}
	desk := accounts.Account{ID: 12, Role: accounts.RoleOnsiteOperator, ExamAreaCode: &area}
	admin := accounts.Account{ID: 13, Role: accounts.RoleAdmin}
	reg := func(st string, tweak ...func(*registrations.Registration)) registrations.Registration {
		r := registrations.Registration{AccountID: 7, ExamAreaCode: area, Status: st, OnlineTriesLeft: 3,
			WindowStartsAt: now.Add(-time.Hour), WindowEndsAt: now.Add(time.Hour)}
		for _, f := range tweak {
			f(&r)
		}
		return r
	}
	triesUsed := func(r *registrations.Registration) { r.OnlineTriesLeft = 0 }
	for _, c := range []struct {
		who  accounts.Account
		r    registrations.Registration
		step string
		want bool
	}{
		{applicant, reg(status.AwaitingReport), status.StepUploadReport, true},
		{stranger, reg(status.AwaitingReport), status.StepUploadReport, false},
		{applicant, reg(status.CountyReview), status.StepUploadReport, false},
		{county, reg(status.AwaitingReport), status.StepUploadReport, false},
		{county, reg(status.CountyReview), status.StepCountyReview, true},
		{otherCounty, reg(status.CountyReview), status.StepCountyReview, false},
		{province, reg(status.CountyReview), status.StepCountyReview, false},
		{province, reg(status.ProvincialReview), status.StepProvincialReview, true},
		{county, reg(status.ProvincialReview), status.StepProvincialReview, false},
		{desk, reg(status.PreRegistered), status.StepOnsiteCheck, true},
		{desk, reg(status.CountyReview), status.StepOnsiteCheck, false},
		{county, reg(status.PreRegistered), status.StepOnsiteCheck, false},
		{applicant, reg(status.PreRegistered), status.StepOnlineTry, true},
		{applicant, reg(status.PreRegistered, triesUsed), status.StepOnlineTry, false},
		{applicant, reg(status.PreRegistered), status.StepAskIdentityReview, false},
		{applicant, reg(status.PreRegistered, triesUsed), status.StepAskIdentityReview, true},
		{applicant, reg(status.PreRegistered, triesUsed, func(r *registrations.Registration) { r.IdentityReviewAsked = true }), status.StepAskIdentityReview, false},
		{county, reg(status.IdentityReview), status.StepIdentityReview, true},
		{desk, reg(status.IdentityReview), status.StepIdentityReview, false},
		{applicant, reg(status.CountyReview), status.StepWithdraw, true},
		{applicant, reg(status.Completed), status.StepWithdraw, false},
		{county, reg(status.PreRegistered), status.StepAnnul, true},
		{province, reg(status.DiplomaCheck), status.StepChangeExamArea, true},
		{otherCounty, reg(status.PreRegistered), status.StepAnnul, false},
		{county, reg(status.Annulled), status.StepAnnul, false},
		{admin, reg(status.PreRegistered), status.StepAnnul, false},
	} {
		if got := registering.May(c.who, c.r, c.step, now); got != c.want {
			t.Errorf("May(%s of %s, %s, %s) = %v, want %v", c.who.Role, c.who.Area(), c.r.Status, c.step, got, c.want)
		}
	}
}
