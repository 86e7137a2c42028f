package api

// The administrator's pages (pages.md, "Administrator (管理员)"): the
// dashboard of the current sitting, staff accounts, confirmation windows
// and the enrolment records import. Each action calls the same service or
// store method as the JSON handler of api/admin.go (through its shared
// helpers: addStaff, changeStaff, moveAreaWindow, loadEnrolled,
// dashboardCSV), and
// every request is logged by the same audit middleware. The staff pages
// are in pages_admin_staff.go, the dashboard's chart in pages_chart.go.

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/catalog"
	"zikao/internal/enrolled"
	"zikao/internal/registering"
	"zikao/internal/registrations"
	"zikao/internal/status"
)

// adminPages registers the administrator's pages on g (/admin, admins only).
func (s *Server) adminPages(g *gin.RouterGroup) {
	g.GET("", s.audit("dashboard"), s.dashboardPage)
	g.GET("/dashboard.csv", s.audit("dashboard"), s.dashboardDownload)
	g.GET("/staff", s.audit("staff.list"), s.staffPage)
	g.POST("/staff", s.audit("staff.create"), s.staffCreatePost)
	g.GET("/staff/:account_id", s.audit("staff.show"), s.staffAccountPage)
	g.POST("/staff/:account_id", s.audit("staff.update"), s.staffRolePost)
	g.POST("/staff/:account_id/password", s.audit("staff.update"), s.staffPasswordPost)
	g.POST("/staff/:account_id/disable", s.audit("staff.update"), s.staffDisablePost(true))
	g.POST("/staff/:account_id/enable", s.audit("staff.update"), s.staffDisablePost(false))
	g.GET("/windows", s.audit("windows.list"), s.windowsPage)
	g.GET("/windows/:exam_area_code", s.audit("window.show"), s.windowPage)
	g.POST("/windows/:exam_area_code", s.audit("window.move"), s.windowPost)
	g.GET("/enrolled", s.audit("enrolled.form"), s.importPage)
	g.POST("/enrolled", s.audit("enrolled.import"), s.importPost)
	g.GET("/file-access", s.audit("file_access.list"), s.fileAccessPage) // pages_fileaccess.go
}

// areaLabel is how the pages name an exam area: its name with its code.
func areaLabel(name, code string) string { return name + "（" + code + "）" }

// areaLabels maps exam area codes to their labels.
func areaLabels(areas []catalog.ExamArea) map[string]string {
	out := make(map[string]string, len(areas))
	for _, a := range areas {
		out[a.Code] = areaLabel(a.Name, a.Code)
	}
	return out
}

// The dashboard.

// dashboardStatuses is the order of the dashboard's columns: a
// registration's way from submission to its end.
var dashboardStatuses = []string{status.DiplomaCheck, status.AwaitingReport, status.CountyReview, status.ProvincialReview,
	status.PreRegistered, status.Completed, status.Expired, status.Withdrawn, status.Annulled}

type dashboardColumn struct{ Status, Label string }

type dashboardRow struct {
	Label  string // the exam area's name and code
	Counts []int  // by column
	Total  int
}

type dashboardData struct {
	Year, Sitting int
	Columns       []dashboardColumn
	Rows          []dashboardRow
	Totals        []int // by column
	Total         int
	Chart         barChart
}

// makeDashboard lays the counts out as a table of every exam area by
// status (areas unknown to the catalog and statuses unknown to the
// dashboard are added, so that nothing counted is left out).
func makeDashboard(year, sitting int, areas []catalog.ExamArea, counts []registrations.Count) dashboardData {
	statuses := slices.Clone(dashboardStatuses)
	labels := areaLabels(areas)
	codes := make([]string, 0, len(areas))
	for _, a := range areas {
		codes = append(codes, a.Code)
	}
	for _, n := range counts {
		if !slices.Contains(statuses, n.Status) {
			statuses = append(statuses, n.Status)
		}
		if _, ok := labels[n.ExamAreaCode]; !ok {
			labels[n.ExamAreaCode] = n.ExamAreaCode
			codes = append(codes, n.ExamAreaCode)
		}
	}
	d := dashboardData{Year: year, Sitting: sitting, Totals: make([]int, len(statuses))}
	for _, st := range statuses {
		label := status.Label(st)
		if label == "" {
			label = st
		}
		d.Columns = append(d.Columns, dashboardColumn{Status: st, Label: label})
	}
	row := map[string]int{}
	for _, code := range codes {
		row[code] = len(d.Rows)
		d.Rows = append(d.Rows, dashboardRow{Label: labels[code], Counts: make([]int, len(statuses))})
	}
	for _, n := range counts {
		r, col := &d.Rows[row[n.ExamAreaCode]], slices.Index(statuses, n.Status)
		r.Counts[col] += n.Count
		r.Total += n.Count
		d.Totals[col] += n.Count
		d.Total += n.Count
	}
	d.Chart = drawChart(d)
	return d
}

func (s *Server) dashboardPage(c *gin.Context) {
	counts, err := s.Registering.Dashboard(c)
	if err != nil {
		failErr(c, err)
		return
	}
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return
	}
	refused, err := s.refusedMail(c) // pages_mail.go
	if err != nil {
		failErr(c, err)
		return
	}
	s.render(c, "admin_dashboard", page{Data: dashboardView{dashboardData: makeDashboard(s.Year, s.Sitting, areas, counts), Mail: refused}})
}

// dashboardDownload is the dashboard as CSV, for the signed-in page (the
// JSON API's ?format=csv needs a bearer token).
func (s *Server) dashboardDownload(c *gin.Context) {
	counts, err := s.Registering.Dashboard(c)
	if err != nil {
		failErr(c, err)
		return
	}
	s.dashboardCSV(c, counts)
}

// Confirmation windows.

type windowRow struct {
	Code, Label  string
	Starts, Ends string // as the page shows them (北京时间), or ""
	Move         string // the latest window move of the area, in short, or ""
	// The values of the per-area form's inputs (datetime-local), or "".
	startsAt, endsAt string
	moveID           string // the latest window move's id, or ""
}

type windowData struct {
	Year, Sitting int
	Windows       []windowRow
	One           *windowRow      // the area of the per-area page
	Move          *windowMoveInfo // the latest window move of that area
}

// windowMoveInfo is a window move as the per-area page shows it: moved of
// total, then (once done) the registrations not moved.
type windowMoveInfo struct {
	Running           bool
	Moved, Total      int
	NotMoved          []string // registration ids that keep their old window
	Started, Finished string
	Superseded        bool
}

func moveInfo(m registering.Moved) *windowMoveInfo {
	i := &windowMoveInfo{Running: !m.Done, Moved: m.Moved, Total: m.Total, Started: day(m.StartedAt), Superseded: m.SupersededBy != ""}
	if m.FinishedAt != nil {
		i.Finished = day(*m.FinishedAt)
	}
	if m.Done {
		i.NotMoved = sortedNotMoved(m)
	}
	return i
}

// moveShort is the latest window move of an area in the list's words.
func moveShort(m registering.Moved) string {
	switch {
	case !m.Done:
		return fmt.Sprintf("调整中：已调整 %d / 共 %d 条", m.Moved, m.Total)
	case m.NotMovedN > 0:
		return fmt.Sprintf("已调整 %d / 共 %d 条，%d 条暂未调整", m.Moved, m.Total, m.NotMovedN)
	}
	return fmt.Sprintf("已调整 %d / 共 %d 条", m.Moved, m.Total)
}

// localTime is the value of an <input type="datetime-local"> for t, in
// Beijing time.
func localTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(shanghai).Format("2006-01-02T15:04")
}

func (s *Server) windowData(c *gin.Context) (windowData, bool) {
	areas, err := s.Catalog.ExamAreas(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return windowData{}, false
	}
	moves, err := s.Registering.LatestWindowMoves(c, s.Year, s.Sitting)
	if err != nil {
		failErr(c, err)
		return windowData{}, false
	}
	d := windowData{Year: s.Year, Sitting: s.Sitting}
	for _, a := range areas {
		r := windowRow{Code: a.Code, Label: areaLabel(a.Name, a.Code)}
		if a.StartsAt != nil && a.EndsAt != nil {
			r.Starts, r.Ends = day(*a.StartsAt), day(*a.EndsAt)
			r.startsAt, r.endsAt = localTime(a.StartsAt), localTime(a.EndsAt)
		}
		if m, ok := moves[a.Code]; ok {
			r.Move, r.moveID = moveShort(m), m.Operation
		}
		d.Windows = append(d.Windows, r)
	}
	return d, true
}

func (s *Server) windowsPage(c *gin.Context) {
	d, ok := s.windowData(c)
	if !ok {
		return
	}
	s.render(c, "admin_windows", page{Data: d})
}

// windowArea is the data of the per-area page of the path's exam area,
// with its latest window move; it answers 404 and reports false for an
// unknown area.
func (s *Server) windowArea(c *gin.Context) (windowData, url.Values, bool) {
	d, ok := s.windowData(c)
	if !ok {
		return d, nil, false
	}
	for i, w := range d.Windows {
		if w.Code != c.Param("exam_area_code") {
			continue
		}
		d.One = &d.Windows[i]
		if w.moveID != "" {
			m, err := s.Registering.WindowMove(c, w.moveID)
			if err != nil && len(m.NotMoved) == 0 {
				failErr(c, err)
				return d, nil, false
			}
			d.Move = moveInfo(m)
		}
		return d, url.Values{"starts_at": {w.startsAt}, "ends_at": {w.endsAt}}, true
	}
	fail(c, errNotFound)
	return d, nil, false
}

func (s *Server) windowPage(c *gin.Context) {
	d, form, ok := s.windowArea(c)
	if !ok {
		return
	}
	s.render(c, "admin_window", page{Data: d, Form: form})
}

// parseLocalTime reads an <input type="datetime-local"> value as Beijing
// time into fields.
func parseLocalTime(f registering.Fields, field, value string) time.Time {
	if !f.Required(field, value, "时间", "the time") {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, value, shanghai); err == nil {
			return t
		}
	}
	f.Add(field, "时间格式不正确（如 2027-03-01 08:00）", "not a date and time (e.g. 2027-03-01T08:00)")
	return time.Time{}
}

// windowPost moves the area's window (the same window move as the JSON
// API): the page then shows how many moved of how many, and those not
// moved; or, when the move outlasts the service's wait, its progress so
// far (the page shows it again when reloaded).
func (s *Server) windowPost(c *gin.Context) {
	d, _, ok := s.windowArea(c)
	if !ok {
		return
	}
	form, err := readForm(c)
	var m registering.Moved
	if err == nil {
		f := registering.Fields{}
		w := catalog.Window{StartsAt: parseLocalTime(f, "starts_at", form.Get("starts_at")),
			EndsAt: parseLocalTime(f, "ends_at", form.Get("ends_at"))}
		if err = f.Err(); err == nil {
			m, _, err = s.moveAreaWindow(c, d.One.Code, w)
		}
		if err == nil {
			d.One.Starts, d.One.Ends = day(w.StartsAt), day(w.EndsAt)
		}
	}
	if err != nil {
		s.render(c, "admin_window", s.refused(c, err, page{Form: form, Data: d}))
		return
	}
	d.Move = moveInfo(m)
	d.One.Move = moveShort(m)
	notice := fmt.Sprintf("已保存：%d 条进行中的注册已调整到新的现场确认时间（共 %d 条）", m.Moved, m.Total)
	if !m.Done {
		notice = fmt.Sprintf("已保存：新的现场确认时间已生效，该考区进行中的注册正在调整（已调整 %d / 共 %d 条），刷新本页可查看进度", m.Moved, m.Total)
	}
	s.render(c, "admin_window", page{Form: form, Data: d, Notice: notice})
}

// Enrolment records.

type importData struct {
	Columns string       // the file's header row
	Rows    []rowProblem // the bad lines of a refused file
}

const enrolledColumns = "name,id_number,ticket_number,major_code,major_name,level,exam_area_code,source"

func (s *Server) importPage(c *gin.Context) {
	s.render(c, "admin_enrolled", page{Data: importData{Columns: enrolledColumns}})
}

func (s *Server) importPost(c *gin.Context) {
	d := importData{Columns: enrolledColumns}
	form, err := readMultipart(c)
	if err == nil {
		file, ok := formFile(c, "file")
		if !ok {
			return
		}
		var res enrolled.ImportResult
		res, d.Rows, err = s.loadEnrolled(c, file)
		if err == nil {
			s.render(c, "admin_enrolled", page{Data: d, Notice: fmt.Sprintf("已导入 %d 条在籍信息（新增 %d 条，已有且相同 %d 条）",
				res.Added+res.Unchanged, res.Added, res.Unchanged)})
			return
		}
	}
	if d.Rows != nil {
		s.render(c, "admin_enrolled", page{Status: errBadImport.status, Error: errBadImport.Message, Data: d})
		return
	}
	s.render(c, "admin_enrolled", s.refused(c, err, page{Form: form, Data: d}))
}
