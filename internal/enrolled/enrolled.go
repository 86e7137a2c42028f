// Package enrolled keeps the legacy Hubei enrolment records (在籍信息):
// people who already hold an admission ticket number from earlier sittings.
package enrolled

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ErrNotFound: no record matches name, ID number and ticket number together.
var ErrNotFound = errors.New("enrolment not found")

// Record is one enrolment record.
type Record struct {
	TicketNumber string `db:"ticket_number" json:"ticket_number"`
	Name         string `db:"name" json:"-"`
	IDNumber     string `db:"id_number" json:"-"`
	MajorCode    string `db:"major_code" json:"major_code"`
	MajorName    string `db:"major_name" json:"major_name"`
	Level        string `db:"level" json:"level"`
	ExamAreaCode string `db:"exam_area_code" json:"exam_area_code"`
	Source       string `db:"source" json:"source"`
}

// Store reads and loads enrolment records.
type Store struct{ db *sqlx.DB }

// NewStore returns a Store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// HasRecords reports whether an ID number appears in the enrolment records.
func (s *Store) HasRecords(ctx context.Context, idNumber string) (bool, error) {
	var found bool
	if err := s.db.GetContext(ctx, &found, `SELECT EXISTS (SELECT 1 FROM enrolled_records WHERE id_number = $1)`, idNumber); err != nil {
		return false, fmt.Errorf("look up enrolment records: %w", err)
	}
	return found, nil
}

// Lookup verifies an enrolment: name, ID number and one of that person's
// ticket numbers must match one record exactly. It then returns every
// record of that name and ID number (social and system sources).
func (s *Store) Lookup(ctx context.Context, name, idNumber, ticketNumber string) ([]Record, error) {
	records := []Record{}
	err := s.db.SelectContext(ctx, &records, `
		SELECT ticket_number, name, id_number, major_code, major_name, level, exam_area_code, source
		FROM enrolled_records
		WHERE name = $1 AND id_number = $2
		  AND EXISTS (SELECT 1 FROM enrolled_records WHERE name = $1 AND id_number = $2 AND ticket_number = $3)
		ORDER BY ticket_number`, name, idNumber, ticketNumber)
	if err != nil {
		return nil, fmt.Errorf("look up enrolment: %w", err)
	}
	if len(records) == 0 {
		return nil, ErrNotFound
	}
	return records, nil
}
