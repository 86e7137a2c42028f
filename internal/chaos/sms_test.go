package chaos

import (
	"strings"
	"testing"

	"zikao/internal/sms"
)

// TestCompareSMS runs the SMS invariant over a made-up outbox: it holds for
// a registration whose two steps sent an e-mail and an SMS each (one SMS
// sent twice with its OutId, kept once), and for a superseded step's
// e-mail that went while its SMS was retracted; it breaks on each way it
// can go wrong.
func TestCompareSMS(t *testing.T) {
	const phone, ticket = "13912345678", "010627100001"
	type data struct {
		rows     []smsRow
		received []sms.Received
		oks      map[string]int
		mails    []outboxRow
		snap     *snapshot
	}
	good := func() *data {
		reg, p := "a", phone
		two, three := 2, 3
		tk := ticket
		return &data{
			rows: []smsRow{
				{ID: "s1", RegistrationID: &reg, Purpose: "pre_registered", Seq: &two, Phone: phone, WantPhone: &p, Template: "ZK_PRE_REGISTERED",
					Attempts: 1, Accepted: true, ProviderID: ptr("b1")},
				{ID: "s2", RegistrationID: &reg, Purpose: "completed", Seq: &three, Phone: phone, WantPhone: &p, Template: "ZK_COMPLETED",
					Attempts: 2, Accepted: true, ProviderID: ptr("b2")},
			},
			received: []sms.Received{
				{ID: "b1", OutID: "s1", Phone: phone, Template: "ZK_PRE_REGISTERED", Text: "【湖北自考】您已完成预注册"},
				{ID: "b2", OutID: "s2", Phone: phone, Template: "ZK_COMPLETED", Text: "【湖北自考】准考证号" + ticket},
			},
			oks: map[string]int{"s1": 1, "s2": 2},
			mails: []outboxRow{{ID: "m1", RegistrationID: "a", Kind: "pre_registered", Seq: 2, Accepted: true},
				{ID: "m2", RegistrationID: "a", Kind: "completed", Seq: 3, Accepted: true}},
			snap: &snapshot{
				rows: map[string]row{"a": {ID: "a", Status: "completed", LastSeq: 3, Ticket: &tk}},
				history: map[string][]historyRow{"a": {{Seq: 1, Status: "diploma_check"}, {Seq: 2, Status: "pre_registered"},
					{Seq: 3, Status: "completed"}}},
			},
		}
	}
	check := func(d *data) *Invariant { return compareSMS(d.rows, d.received, d.oks, d.mails, d.snap) }
	inv := check(good())
	if len(inv.Failed) > 0 {
		t.Fatalf("a proper delivery breaks the invariant: %q", inv.Failed)
	}
	if !strings.Contains(inv.Figures, "1 sent again") || !strings.Contains(inv.Figures, "2 e-mails of steps each with its SMS") {
		t.Errorf("figures: %s", inv.Figures)
	}
	superseded := good()
	superseded.mails = append(superseded.mails, outboxRow{ID: "m3", RegistrationID: "a", Kind: "withdrawn", Seq: 3, Accepted: true})
	if inv := check(superseded); len(inv.Failed) > 0 || !strings.Contains(inv.Figures, "1 e-mails and 0 SMS of superseded steps") {
		t.Errorf("a superseded step's e-mail sent without its SMS: %q; %s", inv.Failed, inv.Figures)
	}

	breaks := map[string]func(d *data){
		"an e-mail without its SMS": func(d *data) { d.rows, d.received = d.rows[:1], d.received[:1] },
		"an SMS without its e-mail": func(d *data) { d.mails = d.mails[:1] },
		"an unsent e-mail of a superseded step": func(d *data) {
			d.mails = append(d.mails, outboxRow{ID: "m3", RegistrationID: "a", Kind: "withdrawn", Seq: 3})
		},
		"given up":            func(d *data) { d.rows[0].Accepted, d.rows[0].Failed = false, true },
		"not delivered":       func(d *data) { d.rows[0].Accepted = false },
		"never arrived":       func(d *data) { d.received = d.received[1:] },
		"kept twice":          func(d *data) { d.received = append(d.received, d.received[0]) },
		"another provider id": func(d *data) { d.rows[0].ProviderID = ptr("b9") },
		"no provider id":      func(d *data) { d.rows[0].ProviderID = nil },
		"another phone":       func(d *data) { d.received[0].Phone = "13900000000" },
		"another template":    func(d *data) { d.received[0].Template = "ZK_EXPIRED" },
		"no signature":        func(d *data) { d.received[0].Text = "您已完成预注册" },
		"not the registration's phone": func(d *data) {
			other := "13800000000"
			d.rows[1].WantPhone = &other
		},
		"no ticket in the completion's text": func(d *data) { d.received[1].Text = "【湖北自考】准考证号" },
	}
	for name, mutate := range breaks {
		d := good()
		mutate(d)
		if inv := check(d); len(inv.Failed) == 0 {
			t.Errorf("%s: the invariant held", name)
		} else if strings.Contains(strings.Join(inv.Failed, " "), phone) {
			t.Errorf("%s: the failure names the phone: %q", name, inv.Failed)
		}
	}
}

func ptr(s string) *string { return &s }
