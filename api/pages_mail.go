package api

// The e-mails the SMTP server refused for good (an address that does not
// exist, a mailbox that refuses the message: internal/mail), as the
// administrator's dashboard shows them: how many, and the newest with when,
// which message, which registration and the server's reply code. No address
// is shown: the registration id leads to the applicant for the offices.

import (
	"context"

	"zikao/internal/mail"
)

// refusedShown is how many refused e-mails the dashboard lists, newest first.
const refusedShown = 50

// dashboardView is the dashboard page's data: the registrations' counts
// and the refused e-mails.
type dashboardView struct {
	dashboardData
	Mail refusedMailView
}

type refusedMailView struct {
	Count int
	Rows  []refusedMailRow // the newest refusedShown
	More  bool             // Count is more than the rows shown
}

type refusedMailRow struct {
	At             string // when the server refused it (Beijing time)
	Kind           string // the message, in Chinese, with its kind
	RegistrationID string
	Reply          string // the reply code and enhanced status, e.g. 550 5.1.1
}

// mailKindLabels name the kinds of e-mail (README, "E-mail") in Chinese.
var mailKindLabels = map[mail.Kind]string{
	mail.Rejected:        "报告审核未通过",
	mail.PreRegistered:   "预注册成功",
	mail.Completed:       "注册完成",
	mail.Expired:         "注册失效",
	mail.Withdrawn:       "注册撤销",
	mail.Annulled:        "注册作废",
	mail.IdentityRefused: "人工核验未通过",
	mail.AreaChanged:     "考区变更",
	mail.WindowMoved:     "现场确认时间变更",
}

func mailKindLabel(k mail.Kind) string {
	if l, ok := mailKindLabels[k]; ok {
		return l + "（" + string(k) + "）"
	}
	return string(k)
}

// refusedMail reads the refused e-mails for the dashboard.
func (s *Server) refusedMail(ctx context.Context) (refusedMailView, error) {
	r, err := mail.ReadRefused(ctx, s.DB, refusedShown)
	if err != nil {
		return refusedMailView{}, err
	}
	v := refusedMailView{Count: r.Count, More: r.Count > len(r.Newest)}
	for _, n := range r.Newest {
		v.Rows = append(v.Rows, refusedMailRow{At: day(n.At), Kind: mailKindLabel(n.Kind), RegistrationID: n.RegistrationID, Reply: n.Reply})
	}
	return v, nil
}

// refusedMailCount is how many e-mails the SMTP server refused for good
// (the JSON dashboard's mail_refused).
func (s *Server) refusedMailCount(ctx context.Context) (int, error) {
	r, err := mail.ReadRefused(ctx, s.DB, 0)
	return r.Count, err
}
