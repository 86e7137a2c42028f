package registrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"zikao/internal/registrations"
	"zikao/internal/status"
)

// BenchmarkInbox measures a page of 50 of an exam area's inbox holding
// 20,000 waiting registrations: the first page and the last one (reached
// by walking every page once, outside the timer), with the count of all of
// them, as the registration service asks for them; and the same over every
// exam area (a provincial reviewer without a filter). Each should answer
// within 50 ms. The query plans are checked to use the indexes.
//
//	go test -run '^$' -bench Inbox ./internal/registrations/
func BenchmarkInbox(b *testing.B) {
	const area, rows, limit = "9021", 20000, 50
	ctx := context.Background()
	batch := uuid.NewString()[:8]
	// The bench area's 20,000 in county review, among 30,000 of other areas
	// and statuses (which the province holds too).
	insertRows(b, batch, rows, "'"+area+"'", "'county_review'")
	insertRows(b, batch, 30000, "(ARRAY['0102', '0103', '0200', '0300', '0500'])[1 + id % 5]",
		"(ARRAY['pre_registered', 'completed', 'county_review', 'provincial_review', 'awaiting_report', 'withdrawn'])[1 + id % 6]")
	b.Cleanup(func() {
		_, err := database.Exec(`WITH gone AS (DELETE FROM registrations WHERE id_number LIKE 'B' || $1 || '%' RETURNING account_id)
			DELETE FROM accounts WHERE id IN (SELECT account_id FROM gone)`, batch)
		if err != nil {
			b.Error(err)
		}
	})
	if _, err := database.Exec(`VACUUM ANALYZE registrations`); err != nil {
		b.Fatal(err)
	}
	store := registrations.NewStore(database)

	for _, c := range []struct{ name, area string }{{"", area}, {"_every_area", ""}} {
		q := registrations.PageQuery{Status: status.CountyReview, Area: c.area, Limit: limit}
		// Walk to the last page once.
		var last *registrations.Position
		seen := 0
		for {
			regs, total, err := store.WaitingPage(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			seen += len(regs)
			if len(regs) < limit || seen == total {
				if seen != total || total < rows || (c.area == "" && total < rows+5000) {
					b.Fatalf("walked %d of %d", seen, total)
				}
				last = q.After
				break
			}
			q.After = &registrations.Position{Since: regs[len(regs)-1].StageSince, ID: regs[len(regs)-1].ID}
		}
		explain(b, c.area, nil)
		explain(b, c.area, last)
		for _, page := range []struct {
			name  string
			after *registrations.Position
		}{{"first", nil}, {"last", last}} {
			b.Run(page.name+c.name, func(b *testing.B) {
				q := registrations.PageQuery{Status: status.CountyReview, Area: c.area, Limit: limit + 1, After: page.after}
				for b.Loop() {
					if _, _, err := store.WaitingPage(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// insertRows writes n valid registrations, one account each (one open
// registration per account), 专科, in the exam area and status that the
// SQL expressions give (of the account's id), that status reached some
// time in the last five days, with the history entry that moved them there.
func insertRows(b *testing.B, batch string, n int, area, st string) {
	b.Helper()
	_, err := database.Exec(`
		WITH acc AS (
			INSERT INTO accounts (login_name, password_hash, security_question_id, security_answer_hash, role)
			SELECT 'bench-' || $1 || '-' || $2 || '-' || g, 'x', 1, 'x', 'applicant' FROM generate_series(1, $2) g
			RETURNING id),
		reg AS (
			INSERT INTO registrations (id, account_id, kind, status, name, id_number, gender, birth_date, phone,
				major_type, level, major_code, exam_area_code, year, sitting, terms_agreed_at, window_starts_at,
				window_ends_at, last_seq, stage_since)
			SELECT gen_random_uuid(), id, 'new', `+st+`, '测试', 'B' || $1 || lpad(id::text, 9, '0'), 'male',
				'1990-01-01', '13800000000', 'social', 'zhuanke', '590201', `+area+`, 2027, 1, now(), now() - interval '1 day',
				now() + interval '30 days', 2, now() - make_interval(secs => random() * 5 * 86400)
			FROM acc
			RETURNING id, status, stage_since)
		INSERT INTO registration_history (registration_id, seq, status, at, by_role)
		SELECT id, 2, status, stage_since, 'applicant' FROM reg`, batch, n)
	if err != nil {
		b.Fatal(err)
	}
}

// explain fails when the plan of an inbox page (the registrations part of
// WaitingPage's query) or of its count reads the table whole, or when the
// page sorts.
func explain(b *testing.B, area string, after *registrations.Position) {
	b.Helper()
	where, args := []string{"status = $1"}, []any{status.CountyReview}
	if area != "" {
		args = append(args, area)
		where = append(where, "exam_area_code = $2")
	}
	count := `SELECT count(*) FROM registrations WHERE ` + strings.Join(where, " AND ")
	countArgs := args
	if after != nil {
		args = append(args, after.Since, after.ID)
		where = append(where, fmt.Sprintf("(stage_since, id) > ($%d::timestamptz, $%d::uuid)", len(args)-1, len(args)))
	}
	page := `SELECT * FROM (SELECT r.*, d.file_id FROM registrations r LEFT JOIN diploma_reports d ON d.id = r.report_id) v
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY stage_since, id LIMIT 51`
	for _, q := range []struct {
		sql  string
		args []any
		page bool
	}{{page, args, true}, {count, countArgs, false}} {
		var plan []string
		if err := database.Select(&plan, `EXPLAIN (ANALYZE, BUFFERS) `+q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		b.Logf("area %q, after a position %v:\n%s", area, after != nil, text)
		// A sort is fine over a range the index bounds (the rows after the position).
		if strings.Contains(text, "Seq Scan on registrations") || (q.page && strings.Contains(text, "Sort") && !strings.Contains(text, "ROW(stage_since")) {
			b.Errorf("plan reads the table whole or sorts it:\n%s", text)
		}
	}
}
