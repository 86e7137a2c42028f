package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/enrolled"
	"zikao/internal/registering"
	"zikao/internal/registrations"
)

// Administration over HTTP (admins only): staff accounts, confirmation
// windows, the enrolment records import and the dashboard of the current
// sitting. Every request is logged by audit.

// areaCode is the form of an exam area code that audit logs.
var areaCode = regexp.MustCompile(`^[0-9A-Za-z]{1,10}$`)

// auditKey holds extra attributes a handler adds to its audit line.
const auditKey = "audit"

// audit logs one line per administration request once it is answered: the
// action, the acting account's id, the target (account id or exam area
// code, from the path or set by the handler) and the answer's status. It
// never logs login names, ID numbers or names.
func (s *Server) audit(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		attrs := []any{"action", action, "actor_account_id", account(c).ID, "status", c.Writer.Status()}
		// Path values as given only when well formed: the log holds no free text.
		if id := c.Param("account_id"); id != "" {
			if _, err := strconv.ParseInt(id, 10, 64); err != nil {
				id = "malformed"
			}
			attrs = append(attrs, "target_account_id", id)
		}
		if area := c.Param("exam_area_code"); area != "" {
			if !areaCode.MatchString(area) {
				area = "malformed"
			}
			attrs = append(attrs, "exam_area_code", area)
		}
		if more, ok := c.Get(auditKey); ok {
			attrs = append(attrs, more.([]any)...)
		}
		slog.InfoContext(c, "admin", attrs...)
	}
}

// auditAdd adds attributes to the request's audit line.
func auditAdd(c *gin.Context, attrs ...any) {
	if more, ok := c.Get(auditKey); ok {
		attrs = append(more.([]any), attrs...)
	}
	c.Set(auditKey, attrs)
}

type staffView struct {
	AccountID    int64   `json:"account_id"`
	LoginName    string  `json:"login_name"`
	Role         string  `json:"role"`
	ExamAreaCode *string `json:"exam_area_code"`
	Phone        *string `json:"phone"` // the bound phone, if any
	Disabled     bool    `json:"disabled"`
}

func makeStaffView(a accounts.Staff) staffView {
	return staffView{AccountID: a.ID, LoginName: a.LoginName, Role: a.Role, ExamAreaCode: a.ExamAreaCode, Phone: a.Phone, Disabled: a.Disabled}
}

func (s *Server) listStaff(c *gin.Context) {
	staff, err := s.Accounts.ListStaff(c)
	if err != nil {
		failErr(c, err)
		return
	}
	out := make([]staffView, 0, len(staff))
	for _, a := range staff {
		out = append(out, makeStaffView(a))
	}
	c.JSON(http.StatusOK, gin.H{"staff": out})
}

func (s *Server) createStaff(c *gin.Context) {
	var in struct {
		LoginName    string `json:"login_name"`
		Password     string `json:"password"`
		Role         string `json:"role"`
		ExamAreaCode string `json:"exam_area_code"`
	}
	if !bindJSON(c, &in) {
		return
	}
	a, err := s.addStaff(c, in.LoginName, in.Password, in.Role, in.ExamAreaCode)
	if !s.accountError(c, err) {
		return
	}
	c.JSON(http.StatusCreated, makeStaffView(a))
}

// addStaff creates a staff account (accounts.Store.AddStaff), for the JSON
// API and the pages; the audit line gets its id and role.
func (s *Server) addStaff(c *gin.Context, login, password, role, area string) (accounts.Staff, error) {
	a, err := s.Accounts.AddStaff(c, login, password, role, area)
	if err == nil {
		auditAdd(c, "target_account_id", a.ID, "role", a.Role)
	}
	return a, err
}

func (s *Server) updateStaff(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("account_id"), 10, 64)
	if err != nil {
		fail(c, errNotFound)
		return
	}
	var fields map[string]json.RawMessage
	if !bindJSON(c, &fields) || !refuseNulls(c, fields, "exam_area_code") {
		return
	}
	var in struct {
		Role         *string `json:"role"`
		ExamAreaCode *string `json:"exam_area_code"`
		Disabled     *bool   `json:"disabled"`
		Password     *string `json:"password"`
	}
	if !decodeFields(c, fields, &in) {
		return
	}
	a, err := s.changeStaff(c, id,
		accounts.StaffChange{Role: in.Role, ExamAreaCode: in.ExamAreaCode, Disabled: in.Disabled, Password: in.Password})
	if errors.Is(err, accounts.ErrStaffNotFound) {
		fail(c, errNotFound)
		return
	}
	if !s.accountError(c, err) {
		return
	}
	c.JSON(http.StatusOK, makeStaffView(a))
}

// changeStaff changes a staff account (accounts.Store.UpdateStaff) on
// behalf of the signed-in administrator, for the JSON API and the pages;
// the audit line names the changed fields, never their values.
func (s *Server) changeStaff(c *gin.Context, id int64, ch accounts.StaffChange) (accounts.Staff, error) {
	var changed []string
	for name, set := range map[string]bool{"role": ch.Role != nil, "exam_area_code": ch.ExamAreaCode != nil,
		"disabled": ch.Disabled != nil, "password": ch.Password != nil} {
		if set {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	auditAdd(c, "changes", strings.Join(changed, ","))
	return s.Accounts.UpdateStaff(c, account(c).ID, id, ch)
}

type windowView struct {
	ExamAreaCode string     `json:"exam_area_code"`
	StartsAt     *time.Time `json:"starts_at"`
	EndsAt       *time.Time `json:"ends_at"`
}

func (s *Server) listWindows(c *gin.Context) {
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	out := make([]windowView, 0, len(areas))
	for _, a := range areas {
		out = append(out, windowView{ExamAreaCode: a.Code, StartsAt: a.StartsAt, EndsAt: a.EndsAt})
	}
	c.JSON(http.StatusOK, gin.H{"windows": out})
}

// moveWindow sets an exam area's window for the current sitting and moves
// its open registrations to it by a window move (api.md 1.2, "Window moves
// at scale"): 200 with the outcome when the move ended within the
// service's wait (registrations that could not be moved are listed in
// not_moved: the window is set, sending the same request again moves
// them), else 202 with the move's operation_id, to follow with
// GET /admin/window-moves/{operation_id}.
func (s *Server) moveWindow(c *gin.Context) {
	var in struct {
		StartsAt string `json:"starts_at"`
		EndsAt   string `json:"ends_at"`
	}
	if !bindJSON(c, &in) {
		return
	}
	f := registering.Fields{}
	parse := func(field, value string) time.Time {
		if !f.Required(field, value, "时间", "the time") {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, value)
		if err != nil {
			f.Add(field, "时间须为 RFC 3339 格式（如 2027-03-01T08:00:00+08:00）", "must be an RFC 3339 time (e.g. 2027-03-01T08:00:00+08:00)")
		}
		return t
	}
	w := catalog.Window{StartsAt: parse("starts_at", in.StartsAt), EndsAt: parse("ends_at", in.EndsAt)}
	if len(f) > 0 {
		invalid(c, f)
		return
	}
	area := c.Param("exam_area_code")
	m, notMoved, err := s.moveAreaWindow(c, area, w)
	if err != nil {
		failErr(c, err)
		return
	}
	window := windowView{ExamAreaCode: area, StartsAt: &w.StartsAt, EndsAt: &w.EndsAt}
	if !m.Done {
		c.JSON(http.StatusAccepted, gin.H{"window": window, "operation_id": m.Operation})
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"window":       window,
		"operation_id": m.Operation,
		"moved":        m.Moved,
		"not_moved":    notMoved,
	})
}

// moveAreaWindow sets an exam area's window for the current sitting
// (registering.Service.MoveWindow), for the JSON API and the pages. err is
// nil once the window is set and its move started, even when some
// registrations keep their old window: those are notMoved (sorted, each
// logged with why). A move still running when the service stopped waiting
// is not m.Done.
func (s *Server) moveAreaWindow(c *gin.Context, area string, w catalog.Window) (m registering.Moved, notMoved []string, err error) {
	// A move once started goes on to the end, even past the request's
	// deadline: what it could not move is reported (and logged), not undone.
	m, err = s.Registering.MoveWindow(context.WithoutCancel(c.Request.Context()), area, s.Year, s.Sitting, w)
	if err != nil && len(m.NotMoved) == 0 {
		return m, nil, err
	}
	notMoved = sortedNotMoved(m)
	for _, id := range notMoved {
		slog.WarnContext(c, "registration keeps its old window", "operation_id", m.Operation, "registration_id", id, "error", m.NotMoved[id])
	}
	auditAdd(c, "operation_id", m.Operation, "done", m.Done, "moved", m.Moved, "not_moved", len(notMoved))
	return m, notMoved, nil
}

// sortedNotMoved are the ids of the registrations a window move has not
// moved (so far), sorted.
func sortedNotMoved(m registering.Moved) []string {
	notMoved := make([]string, 0, len(m.NotMoved))
	for id := range m.NotMoved {
		notMoved = append(notMoved, id)
	}
	slices.Sort(notMoved)
	return notMoved
}

// windowMoveView is a window move as GET /admin/window-moves/{id} shows it.
type windowMoveView struct {
	OperationID  string     `json:"operation_id"`
	ExamAreaCode string     `json:"exam_area_code"`
	Window       windowView `json:"window"`
	State        string     `json:"state"` // running or done
	Total        int        `json:"total"`
	Moved        int        `json:"moved"`
	NotMoved     []string   `json:"not_moved"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	SupersededBy *string    `json:"superseded_by"`
}

// windowMove answers a window move's progress, and its outcome once done.
func (s *Server) windowMove(c *gin.Context) {
	m, err := s.Registering.WindowMove(c, c.Param("operation_id"))
	if err != nil && len(m.NotMoved) == 0 {
		failErr(c, err)
		return
	}
	auditAdd(c, "operation_id", m.Operation, "exam_area_code", m.ExamAreaCode)
	v := windowMoveView{OperationID: m.Operation, ExamAreaCode: m.ExamAreaCode,
		Window: windowView{ExamAreaCode: m.ExamAreaCode, StartsAt: &m.Window.StartsAt, EndsAt: &m.Window.EndsAt},
		State:  "running", Total: m.Total, Moved: m.Moved, NotMoved: sortedNotMoved(m),
		StartedAt: m.StartedAt, FinishedAt: m.FinishedAt}
	if m.Done {
		v.State = "done"
	}
	if m.SupersededBy != "" {
		v.SupersededBy = &m.SupersededBy
	}
	c.JSON(http.StatusOK, v)
}

// rowProblem is one bad line of an import file.
type rowProblem struct {
	Line      int    `json:"line"`
	Message   string `json:"message"`
	MessageEN string `json:"message_en"`
}

func (s *Server) importEnrolled(c *gin.Context) {
	if !parseMultipart(c) {
		return
	}
	file, ok := formFile(c, "file")
	if !ok {
		return
	}
	res, rows, err := s.loadEnrolled(c, file)
	if rows != nil {
		c.AbortWithStatusJSON(errBadImport.status, gin.H{"error": errBadImport.apiError, "rows": rows})
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"loaded": res.Added + res.Unchanged, "added": res.Added, "unchanged": res.Unchanged})
}

// errBadImport answers an import file with bad lines (listed beside it).
var errBadImport = func() problem {
	p := errValidation
	p.Message, p.MessageEN = "导入文件有误，未导入任何记录", "the file has bad lines: nothing was loaded"
	return p
}()

// loadEnrolled imports an enrolment records file (enrolled.Store.Import)
// and closes it, for the JSON API and the pages: rows lists the bad lines
// of a refused file (nothing loaded); a missing file (nil) is invalid.
func (s *Server) loadEnrolled(c *gin.Context, file multipart.File) (res enrolled.ImportResult, rows []rowProblem, err error) {
	if file == nil {
		return res, nil, registering.Fields{"file": "请选择要导入的 CSV 文件 / the CSV file is required"}.Err()
	}
	defer file.Close()
	res, err = s.Registering.Enrolled.Import(c, file)
	var bad *enrolled.ImportError
	if errors.As(err, &bad) {
		rows = make([]rowProblem, 0, len(bad.Rows))
		for _, r := range bad.Rows {
			rows = append(rows, rowProblem{Line: r.Line, Message: r.Message, MessageEN: r.Problem})
		}
		auditAdd(c, "bad_lines", len(rows))
		return res, rows, err
	}
	if err == nil {
		auditAdd(c, "added", res.Added, "unchanged", res.Unchanged)
	}
	return res, nil, err
}

type countView struct {
	ExamAreaCode string `json:"exam_area_code"`
	Status       string `json:"status"`
	Count        int    `json:"count"`
}

// dashboard counts the current sitting's registrations by exam area and
// status, as JSON or (format=csv) as a CSV file.
func (s *Server) dashboard(c *gin.Context) {
	format := c.Query("format")
	if format != "" && format != "json" && format != "csv" {
		invalid(c, registering.Fields{"format": "格式须为 json 或 csv / format must be json or csv"})
		return
	}
	counts, err := s.Registering.Dashboard(c)
	if err != nil {
		failErr(c, err)
		return
	}
	if format == "csv" {
		s.dashboardCSV(c, counts)
		return
	}
	refused, err := s.refusedMailCount(c) // pages_mail.go
	if err != nil {
		failErr(c, err)
		return
	}
	out := make([]countView, 0, len(counts))
	for _, n := range counts {
		out = append(out, countView{ExamAreaCode: n.ExamAreaCode, Status: n.Status, Count: n.Count})
	}
	c.JSON(http.StatusOK, gin.H{"counts": out, "mail_refused": refused})
}

// dashboardCSV answers with the dashboard's counts as a CSV download
// (header exam_area_code,status,count), for the JSON API and the pages.
func (s *Server) dashboardCSV(c *gin.Context, counts []registrations.Count) {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"exam_area_code", "status", "count"}) // a strings.Builder takes every write
	for _, n := range counts {
		_ = w.Write([]string{n.ExamAreaCode, n.Status, strconv.Itoa(n.Count)})
	}
	w.Flush()
	c.Header("Content-Disposition", `attachment; filename="dashboard-`+strconv.Itoa(s.Year)+`-`+strconv.Itoa(s.Sitting)+`.csv"`)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/csv; charset=utf-8", []byte(b.String()))
}
