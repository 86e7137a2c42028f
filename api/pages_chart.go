package api

// The dashboard's chart (pages_admin.go): its geometry, laid out here for
// the inline SVG of templates/admin_dashboard.html.

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"zikao/internal/status"
)

// statusColors are the chart's colours, by status.
var statusColors = map[string]string{
	status.DiplomaCheck: "#8ab6d6", status.AwaitingReport: "#f2c14e", status.CountyReview: "#f78154",
	status.ProvincialReview: "#b5838d", status.PreRegistered: "#4d9078", status.Completed: "#1b4965",
	status.Expired: "#9aa5b1", status.Withdrawn: "#cfd6de", status.Annulled: "#8a1c12",
}

// barChart is the dashboard's chart, laid out for an inline SVG: one
// horizontal bar per exam area that has registrations, stacked by status.
type barChart struct {
	Width, Height int
	Font          int // the font size
	Legend        []chartLegend
	Bars          []chartBar
}

type chartLegend struct {
	X, Y, TextX, TextY int
	Color, Label       string
}

type chartBar struct {
	Label             string
	LabelX, TextY     int
	Y, Height         int
	Total, TotalX     int
	Segments          []chartSegment
	AccessibleSummary string
}

type chartSegment struct {
	X, Y, Width, Height int
	Color, Title        string
}

// The chart's geometry, in SVG user units (the page scales it to its
// width, up to 40rem: small enough to read on a phone).
const (
	chartWidth   = 480
	chartLabelW  = 136 // the area names, right-aligned
	chartBarsX   = chartLabelW + 6
	chartBarsW   = chartWidth - chartBarsX - 36 // room for the total after the bar
	chartRowH    = 26
	chartBarH    = 18
	chartFont    = 14
	chartLegendH = 22
)

// drawChart lays out the bars of the dashboard's areas that have
// registrations, scaled to the largest total.
func drawChart(d dashboardData) barChart {
	ch := barChart{Width: chartWidth, Font: chartFont}
	// The legend: the statuses that occur, flowing over as many lines as needed.
	x, y := 0, 0
	for i, col := range d.Columns {
		if d.Totals[i] == 0 {
			continue
		}
		w := 16 + chartFont*utf8.RuneCountInString(col.Label) + 16
		if x > 0 && x+w > chartWidth {
			x, y = 0, y+chartLegendH
		}
		ch.Legend = append(ch.Legend, chartLegend{X: x, Y: y + 3, TextX: x + 16, TextY: y + chartFont, Color: colorOf(col.Status), Label: col.Label})
		x += w
	}
	top := y + chartLegendH + 8
	if len(ch.Legend) == 0 {
		top = 0
	}
	most := 0
	for _, r := range d.Rows {
		most = max(most, r.Total)
	}
	for _, r := range d.Rows {
		if r.Total == 0 {
			continue
		}
		b := chartBar{Label: r.Label, LabelX: chartLabelW, Y: top + (chartRowH-chartBarH)/2, Height: chartBarH,
			TextY: top + chartRowH/2 + chartFont/2 - 1, Total: r.Total}
		var parts []string
		x, sum := chartBarsX, 0
		for i, n := range r.Counts {
			if n == 0 {
				continue
			}
			// Each segment ends where the running sum ends, so rounding never adds up past the bar.
			sum += n
			end := chartBarsX + sum*chartBarsW/most
			b.Segments = append(b.Segments, chartSegment{X: x, Y: b.Y, Width: max(end-x, 1), Height: b.Height, Color: colorOf(d.Columns[i].Status),
				Title: fmt.Sprintf("%s · %s：%d", r.Label, d.Columns[i].Label, n)})
			parts = append(parts, fmt.Sprintf("%s %d", d.Columns[i].Label, n))
			x = end
		}
		b.TotalX = x + 6
		b.AccessibleSummary = r.Label + "：" + strings.Join(parts, "，")
		ch.Bars = append(ch.Bars, b)
		top += chartRowH
	}
	ch.Height = max(top+4, 1)
	return ch
}

func colorOf(st string) string {
	if c, ok := statusColors[st]; ok {
		return c
	}
	return "#6b7785"
}
