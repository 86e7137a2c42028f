package api

import (
	"testing"

	"zikao/internal/catalog"
	"zikao/internal/registrations"
)

// The dashboard leaves nothing counted out (an area or status it does not
// know gets its row or column), and the chart's bars stay in their room.
func TestDashboardLayout(t *testing.T) {
	areas := []catalog.ExamArea{{Code: "0102", Name: "江岸区"}, {Code: "0106", Name: "武昌区"}, {Code: "0107", Name: "青山区"}}
	counts := []registrations.Count{
		{ExamAreaCode: "0102", Status: "pre_registered", Count: 7}, {ExamAreaCode: "0102", Status: "withdrawn", Count: 3},
		{ExamAreaCode: "0102", Status: "completed", Count: 1},
		{ExamAreaCode: "0106", Status: "county_review", Count: 2}, {ExamAreaCode: "0106", Status: "someday", Count: 1},
		{ExamAreaCode: "9999", Status: "expired", Count: 1},
	}
	d := makeDashboard(2027, 1, areas, counts)
	if d.Total != 15 || len(d.Rows) != 4 || d.Rows[3].Label != "9999" || d.Rows[0].Label != "江岸区（0102）" || d.Rows[0].Total != 11 {
		t.Fatalf("rows %+v, total %d", d.Rows, d.Total)
	}
	if last := d.Columns[len(d.Columns)-1]; last.Status != "someday" || last.Label != "someday" {
		t.Fatalf("columns %+v", d.Columns)
	}
	sum := 0
	for _, n := range d.Totals {
		sum += n
	}
	if sum != d.Total {
		t.Errorf("column totals %v add up to %d, not %d", d.Totals, sum, d.Total)
	}
	// One bar per area with registrations (青山区 has none); the largest fills the room.
	if len(d.Chart.Bars) != 3 || len(d.Chart.Legend) != 6 {
		t.Fatalf("bars %d, legend %d", len(d.Chart.Bars), len(d.Chart.Legend))
	}
	for i, b := range d.Chart.Bars {
		end := chartBarsX
		for _, s := range b.Segments {
			if s.X != end || s.Width < 1 {
				t.Errorf("bar %d: segment %+v does not follow %d", i, s, end)
			}
			end = s.X + s.Width
		}
		if end > chartBarsX+chartBarsW || b.Y+b.Height > d.Chart.Height {
			t.Errorf("bar %d ends at %d, past the room", i, end)
		}
		if i == 0 && end != chartBarsX+chartBarsW {
			t.Errorf("the largest bar ends at %d, not %d", end, chartBarsX+chartBarsW)
		}
	}
	if empty := makeDashboard(2027, 1, areas, nil); len(empty.Chart.Bars) != 0 || empty.Total != 0 {
		t.Errorf("no registrations: %+v", empty.Chart)
	}
}
