// Package catalog reads the reference data: security questions, exam areas
// with their confirmation windows, and majors.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Levels (层次).
const (
	LevelZhuanke       = "zhuanke"       // 专科
	LevelZhuanshengben = "zhuanshengben" // 本科(专升本)
)

// LevelLabel is the Chinese name of a level.
func LevelLabel(level string) string {
	switch level {
	case LevelZhuanke:
		return "专科"
	case LevelZhuanshengben:
		return "本科(专升本)"
	}
	return level
}

// ErrNotFound: no such reference row.
var ErrNotFound = errors.New("not found")

// SecurityQuestion is one of the fixed security questions.
type SecurityQuestion struct {
	ID   int    `db:"id" json:"id"`
	Text string `db:"text" json:"text"`
}

// Window is an exam area's confirmation window (现场确认时间) for one sitting.
type Window struct {
	StartsAt time.Time `db:"starts_at" json:"starts_at"`
	EndsAt   time.Time `db:"ends_at" json:"ends_at"`
}

// FullName names an exam area with its city (武汉市武昌区), or alone when it
// is a city of its own (黄石市, not 黄石市黄石市): so the e-mails, the texts
// and the manual check's page name an area.
func FullName(city, name string) string {
	if name == city {
		return name
	}
	return city + name
}

// FullName is the area's FullName.
func (a ExamArea) FullName() string { return FullName(a.City, a.Name) }

// ExamArea is a county-level exam area (考区).
type ExamArea struct {
	Code          string  `db:"code" json:"code"`
	Name          string  `db:"name" json:"name"`
	City          string  `db:"city" json:"city"`
	OfficeAddress string  `db:"office_address" json:"office_address"`
	Window        *Window `db:"-" json:"confirmation_window"`

	StartsAt *time.Time `db:"starts_at" json:"-"`
	EndsAt   *time.Time `db:"ends_at" json:"-"`
}

// Major is a major (专业) offered at one level.
type Major struct {
	Code       string `db:"code" json:"code"`
	Name       string `db:"name" json:"name"`
	Level      string `db:"level" json:"level"`
	HostSchool string `db:"host_school" json:"host_school"`
	MajorType  string `db:"major_type" json:"-"`
}

// Catalog reads reference data from PostgreSQL.
type Catalog struct {
	db *sqlx.DB

	mu     sync.Mutex
	static *Static // read once (Static)
}

// Static is the reference data only a migration changes: the majors and
// the exam areas (names and offices, not their windows, which an
// administrator moves), by code.
type Static struct {
	Majors map[string]Major
	Areas  map[string]ExamArea // without Window
}

// Static returns the reference data a migration alone changes, read from
// PostgreSQL once per Catalog (a failed read is tried again at the next
// call): every view of a registration needs it.
func (c *Catalog) Static(ctx context.Context) (Static, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.static != nil {
		return *c.static, nil
	}
	majors, err := c.Majors(ctx, "")
	if err != nil {
		return Static{}, err
	}
	var areas []ExamArea
	if err := c.db.SelectContext(ctx, &areas, `SELECT code, name, city, office_address FROM exam_areas`); err != nil {
		return Static{}, fmt.Errorf("list exam areas: %w", err)
	}
	st := Static{Majors: make(map[string]Major, len(majors)), Areas: make(map[string]ExamArea, len(areas))}
	for _, m := range majors {
		st.Majors[m.Code] = m
	}
	for _, a := range areas {
		st.Areas[a.Code] = a
	}
	c.static = &st
	return st, nil
}

// New returns a Catalog over db.
func New(db *sqlx.DB) *Catalog { return &Catalog{db: db} }

// SecurityQuestions lists the fixed security questions.
func (c *Catalog) SecurityQuestions(ctx context.Context) ([]SecurityQuestion, error) {
	qs := []SecurityQuestion{}
	if err := c.db.SelectContext(ctx, &qs, `SELECT id, text FROM security_questions ORDER BY id`); err != nil {
		return nil, fmt.Errorf("list security questions: %w", err)
	}
	return qs, nil
}

const examAreaQuery = `
	SELECT a.code, a.name, a.city, a.office_address, w.starts_at, w.ends_at
	FROM exam_areas a
	LEFT JOIN confirmation_windows w ON w.exam_area_code = a.code AND w.year = $1 AND w.sitting = $2`

// ExamAreas lists every exam area with its window for the given sitting (nil
// when none is set).
func (c *Catalog) ExamAreas(ctx context.Context, year, sitting int) ([]ExamArea, error) {
	areas := []ExamArea{}
	if err := c.db.SelectContext(ctx, &areas, examAreaQuery+` ORDER BY a.code`, year, sitting); err != nil {
		return nil, fmt.Errorf("list exam areas: %w", err)
	}
	for i := range areas {
		areas[i].fillWindow()
	}
	return areas, nil
}

// ExamArea returns one exam area with its window for the given sitting.
func (c *Catalog) ExamArea(ctx context.Context, code string, year, sitting int) (ExamArea, error) {
	var a ExamArea
	err := c.db.GetContext(ctx, &a, examAreaQuery+` WHERE a.code = $3`, year, sitting, code)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("look up exam area: %w", err)
	}
	a.fillWindow()
	return a, nil
}

func (a *ExamArea) fillWindow() {
	if a.StartsAt != nil && a.EndsAt != nil {
		a.Window = &Window{StartsAt: *a.StartsAt, EndsAt: *a.EndsAt}
	}
}

// SetWindow sets (or replaces) an exam area's confirmation window.
func (c *Catalog) SetWindow(ctx context.Context, code string, year, sitting int, w Window) error {
	_, err := c.db.ExecContext(ctx, `
		INSERT INTO confirmation_windows (exam_area_code, year, sitting, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (exam_area_code, year, sitting) DO UPDATE SET starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at`,
		code, year, sitting, w.StartsAt, w.EndsAt)
	if err != nil {
		return fmt.Errorf("set confirmation window of %s: %w", code, err)
	}
	return nil
}

// Majors lists the majors of a level, or of every level when level is empty.
func (c *Catalog) Majors(ctx context.Context, level string) ([]Major, error) {
	majors := []Major{}
	err := c.db.SelectContext(ctx, &majors, `
		SELECT code, name, level, host_school, major_type FROM majors
		WHERE $1 = '' OR level = $1 ORDER BY level, code`, level)
	if err != nil {
		return nil, fmt.Errorf("list majors: %w", err)
	}
	return majors, nil
}

// Major returns one major by code.
func (c *Catalog) Major(ctx context.Context, code string) (Major, error) {
	var m Major
	err := c.db.GetContext(ctx, &m, `SELECT code, name, level, host_school, major_type FROM majors WHERE code = $1`, code)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("look up major: %w", err)
	}
	return m, nil
}
