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
	"zikao/internal/wellformed"
)

// Columns is the header row an import file must start with.
var Columns = []string{"name", "id_number", "ticket_number", "major_code", "major_name", "level", "exam_area_code", "source"}

// RowError is what is wrong with one line of an import file, in English
// (Problem) and in Chinese (Message).
type RowError struct {
	Line    int
	Problem string
	Message string
}

// problem is one thing wrong with a row, in Chinese and in English.
type problem struct{ zh, en string }

// rowError joins the problems of a line.
func rowError(line int, ps ...problem) RowError {
	zh, en := make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		zh[i], en[i] = p.zh, p.en
	}
	return RowError{Line: line, Problem: strings.Join(en, "; "), Message: strings.Join(zh, "；")}
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
				bad = append(bad, rowError(row.line, problem{"准考证号 " + row.TicketNumber + " 已属于另一条在籍记录",
					"ticket number " + row.TicketNumber + " already belongs to a different record"}))
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("line %d: %w", row.line, err)
			default:
				var issued bool
				if err := tx.GetContext(ctx, &issued, `SELECT EXISTS (SELECT 1 FROM tickets WHERE ticket_number = $1)`, row.TicketNumber); err != nil {
					return fmt.Errorf("line %d: %w", row.line, err)
				}
				if issued {
					bad = append(bad, rowError(row.line, problem{"准考证号 " + row.TicketNumber + " 已发给一个新生注册",
						"ticket number " + row.TicketNumber + " was issued to a new registration"}))
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
	ref, err := s.referenceCodes(ctx)
	if err != nil {
		return nil, err
	}
	return parseFile(r, ref, time.Now())
}

// reference is what rows are checked against: the level of each major and
// the exam areas.
type reference struct {
	majors map[string]string
	areas  map[string]bool
}

// parseFile reads an import file and checks every row against the
// reference data (ID numbers' birth dates against now): it returns the rows,
// or an *ImportError listing every bad line.
func parseFile(r io.Reader, ref reference, now time.Time) ([]row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(Columns)
	if err := readHeader(cr); err != nil {
		return nil, err
	}
	var rows []row
	var bad []RowError
	seen := map[string]int{}
	line := 1
	for {
		fields, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A record that could not be read has no field positions:
			// the line is the error's.
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				line = perr.StartLine
			} else {
				line++
			}
			bad = append(bad, rowError(line, problem{"该行不是有效的 CSV：" + err.Error(), err.Error()}))
			if perr != nil && perr.Err == csv.ErrFieldCount {
				continue
			}
			break
		}
		line, _ = cr.FieldPos(0)
		rec, problems := checkRow(fields, ref, now)
		if first, dup := seen[rec.TicketNumber]; dup {
			problems = append(problems, problem{fmt.Sprintf("准考证号与第 %d 行重复", first), fmt.Sprintf("ticket_number repeats line %d", first)})
		} else if ticketPattern.MatchString(rec.TicketNumber) {
			seen[rec.TicketNumber] = line
		}
		if len(problems) > 0 {
			bad = append(bad, rowError(line, problems...))
			continue
		}
		rows = append(rows, row{Record: rec, line: line})
	}
	if len(bad) > 0 {
		return nil, &ImportError{Rows: bad}
	}
	return rows, nil
}

func readHeader(cr *csv.Reader) error {
	header, err := cr.Read()
	if err != nil {
		return &ImportError{Rows: []RowError{rowError(1, problem{"缺少标题行：" + err.Error(), "no header row: " + err.Error()})}}
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if strings.Join(header, ",") != strings.Join(Columns, ",") {
		cols := strings.Join(Columns, ",")
		return &ImportError{Rows: []RowError{rowError(1, problem{"标题行须为 " + cols, "header must be " + cols})}}
	}
	return nil
}

// checkRow makes a record of a row's fields (trimmed, the name normalised,
// the ID number upper-case) and lists what is wrong with it.
func checkRow(fields []string, ref reference, now time.Time) (Record, []problem) {
	var problems []problem
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
		if !wellformed.Text(fields[i]) {
			problems = append(problems, problem{Columns[i] + " 含有无效字符（非 UTF-8 或控制字符）", Columns[i] + " holds invalid characters (not UTF-8, or control characters)"})
		}
	}
	rec := Record{Name: idcard.NormalizeName(fields[0]), IDNumber: fields[1], TicketNumber: fields[2], MajorCode: fields[3],
		MajorName: fields[4], Level: fields[5], ExamAreaCode: fields[6], Source: fields[7]}
	if !idcard.ValidName(rec.Name) {
		problems = append(problems, problem{"姓名须为汉字（少数民族姓名可用间隔号·）", "name must be Chinese characters"})
	}
	if n, err := idcard.Parse(rec.IDNumber, now); err != nil {
		zh := "身份证号须为18位"
		switch {
		case errors.Is(err, idcard.ErrChecksum):
			zh = "身份证号校验位不正确"
		case errors.Is(err, idcard.ErrBirthDate):
			zh = "身份证号中的出生日期无效"
		}
		problems = append(problems, problem{zh, "id_number: " + err.Error()})
	} else {
		rec.IDNumber = string(n)
	}
	if !ticketPattern.MatchString(rec.TicketNumber) {
		problems = append(problems, problem{"准考证号须为12位数字", "ticket_number must be 12 digits"})
	}
	if level, ok := ref.majors[rec.MajorCode]; !ok {
		problems = append(problems, problem{fmt.Sprintf("没有此专业代码 %q", rec.MajorCode), fmt.Sprintf("unknown major_code %q", rec.MajorCode)})
	} else if level != rec.Level {
		problems = append(problems, problem{"层次与该专业的层次 " + level + " 不符", "level does not match the major's level " + level})
	}
	if rec.MajorName == "" {
		problems = append(problems, problem{"请填写专业名称", "major_name is required"})
	}
	if !ref.areas[rec.ExamAreaCode] {
		problems = append(problems, problem{fmt.Sprintf("没有此考区代码 %q", rec.ExamAreaCode), fmt.Sprintf("unknown exam_area_code %q", rec.ExamAreaCode)})
	}
	if rec.Source != "social" && rec.Source != "system" {
		problems = append(problems, problem{"来源须为 social 或 system", "source must be social or system"})
	}
	return rec, problems
}

func (s *Store) referenceCodes(ctx context.Context) (reference, error) {
	var ms []struct {
		Code  string `db:"code"`
		Level string `db:"level"`
	}
	if err := s.db.SelectContext(ctx, &ms, `SELECT code, level FROM majors`); err != nil {
		return reference{}, fmt.Errorf("read majors: %w", err)
	}
	var as []string
	if err := s.db.SelectContext(ctx, &as, `SELECT code FROM exam_areas`); err != nil {
		return reference{}, fmt.Errorf("read exam areas: %w", err)
	}
	ref := reference{majors: map[string]string{}, areas: map[string]bool{}}
	for _, m := range ms {
		ref.majors[m.Code] = m.Level
	}
	for _, a := range as {
		ref.areas[a] = true
	}
	return ref, nil
}
