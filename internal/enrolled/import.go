package enrolled

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"zikao/internal/db"
	"zikao/internal/idcard"
)

// Columns is the header row an import file must start with.
var Columns = []string{"name", "id_number", "ticket_number", "major_code", "major_name", "level", "exam_area_code", "source"}

// RowError is what is wrong with one line of an import file.
type RowError struct {
	Line    int
	Problem string
}

// ImportError lists every bad line; nothing of the file was loaded.
type ImportError struct{ Rows []RowError }

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad line(s), nothing loaded:", len(e.Rows))
	for _, r := range e.Rows {
		fmt.Fprintf(&b, "\n  line %d: %s", r.Line, r.Problem)
	}
	return b.String()
}

// ImportResult counts the records of a loaded file.
type ImportResult struct {
	Added     int // new records
	Unchanged int // records already there, identical
}

var ticketPattern = regexp.MustCompile(`^\d{12}$`)

// Import loads a UTF-8 CSV file of enrolment records (header row: Columns).
// Every row is checked first; if any is bad, an *ImportError lists them by
// line and nothing is loaded. Importing the same file again changes nothing;
// a row whose ticket number is already held by a different record is bad.
func (s *Store) Import(ctx context.Context, r io.Reader) (ImportResult, error) {
	rows, err := s.parse(ctx, r)
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res = ImportResult{}
		var bad []RowError
		for _, row := range rows {
			var existing Record
			err := tx.GetContext(ctx, &existing, `
				SELECT ticket_number, name, id_number, major_code, major_name, level, exam_area_code, source
				FROM enrolled_records WHERE ticket_number = $1`, row.TicketNumber)
			switch {
			case err == nil && existing == row.Record:
				res.Unchanged++
			case err == nil:
				bad = append(bad, RowError{row.line, "ticket number " + row.TicketNumber + " already belongs to a different record"})
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("line %d: %w", row.line, err)
			default:
				var issued bool
				if err := tx.GetContext(ctx, &issued, `SELECT EXISTS (SELECT 1 FROM tickets WHERE ticket_number = $1)`, row.TicketNumber); err != nil {
					return fmt.Errorf("line %d: %w", row.line, err)
				}
				if issued {
					bad = append(bad, RowError{row.line, "ticket number " + row.TicketNumber + " was issued to a new registration"})
					continue
				}
				if _, err := tx.NamedExecContext(ctx, `
					INSERT INTO enrolled_records (ticket_number, name, id_number, major_code, major_name, level, exam_area_code, source)
					VALUES (:ticket_number, :name, :id_number, :major_code, :major_name, :level, :exam_area_code, :source)`, row.Record); err != nil {
					return fmt.Errorf("line %d: %w", row.line, err)
				}
				res.Added++
			}
		}
		if len(bad) > 0 {
			return &ImportError{Rows: bad}
		}
		return nil
	})
	return res, err
}

type row struct {
	Record
	line int
}

func (s *Store) parse(ctx context.Context, r io.Reader) ([]row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(Columns)
	header, err := cr.Read()
	if err != nil {
		return nil, &ImportError{Rows: []RowError{{1, "no header row: " + err.Error()}}}
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if strings.Join(header, ",") != strings.Join(Columns, ",") {
		return nil, &ImportError{Rows: []RowError{{1, "header must be " + strings.Join(Columns, ",")}}}
	}
	majors, areas, err := s.referenceCodes(ctx)
	if err != nil {
		return nil, err
	}
	var rows []row
	var bad []RowError
	seen := map[string]int{}
	for {
		fields, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			bad = append(bad, RowError{line, err.Error()})
			var perr *csv.ParseError
			if errors.As(err, &perr) && perr.Err == csv.ErrFieldCount {
				continue
			}
			break
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		rec := Record{Name: idcard.NormalizeName(fields[0]), IDNumber: fields[1], TicketNumber: fields[2], MajorCode: fields[3],
			MajorName: fields[4], Level: fields[5], ExamAreaCode: fields[6], Source: fields[7]}
		var problems []string
		if !idcard.ValidName(rec.Name) {
			problems = append(problems, "name must be Chinese characters")
		}
		if n, err := idcard.Parse(rec.IDNumber, time.Now()); err != nil {
			problems = append(problems, "id_number: "+err.Error())
		} else {
			rec.IDNumber = string(n)
		}
		if !ticketPattern.MatchString(rec.TicketNumber) {
			problems = append(problems, "ticket_number must be 12 digits")
		} else if first, dup := seen[rec.TicketNumber]; dup {
			problems = append(problems, fmt.Sprintf("ticket_number repeats line %d", first))
		} else {
			seen[rec.TicketNumber] = line
		}
		if level, ok := majors[rec.MajorCode]; !ok {
			problems = append(problems, "unknown major_code "+rec.MajorCode)
		} else if level != rec.Level {
			problems = append(problems, "level does not match the major's level "+level)
		}
		if rec.MajorName == "" {
			problems = append(problems, "major_name is required")
		}
		if !areas[rec.ExamAreaCode] {
			problems = append(problems, "unknown exam_area_code "+rec.ExamAreaCode)
		}
		if rec.Source != "social" && rec.Source != "system" {
			problems = append(problems, "source must be social or system")
		}
		if len(problems) > 0 {
			bad = append(bad, RowError{line, strings.Join(problems, "; ")})
			continue
		}
		rows = append(rows, row{Record: rec, line: line})
	}
	if len(bad) > 0 {
		return nil, &ImportError{Rows: bad}
	}
	return rows, nil
}

func (s *Store) referenceCodes(ctx context.Context) (majors map[string]string, areas map[string]bool, err error) {
	var ms []struct {
		Code  string `db:"code"`
		Level string `db:"level"`
	}
	if err := s.db.SelectContext(ctx, &ms, `SELECT code, level FROM majors`); err != nil {
		return nil, nil, fmt.Errorf("read majors: %w", err)
	}
	var as []string
	if err := s.db.SelectContext(ctx, &as, `SELECT code FROM exam_areas`); err != nil {
		return nil, nil, fmt.Errorf("read exam areas: %w", err)
	}
	majors, areas = map[string]string{}, map[string]bool{}
	for _, m := range ms {
		majors[m.Code] = m.Level
	}
	for _, a := range as {
		areas[a] = true
	}
	return majors, areas, nil
}
