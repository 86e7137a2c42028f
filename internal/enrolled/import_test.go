package enrolled_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/enrolled"
	"zikao/internal/testenv"
)

var (
	database *sqlx.DB
	store    *enrolled.Store
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only the fuzz target, which needs no database;
		// a PostgreSQL it started would outlive it when it is killed, and
		// hold its output open (go test -fuzz then waits for ever).
		os.Exit(m.Run())
	}
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database, store = db, enrolled.NewStore(db)
		return m.Run()
	}, false))
}

const header = "name,id_number,ticket_number,major_code,major_name,level,exam_area_code,source\n"

func TestImportLoadsAFileOnce(t *testing.T) {
	ctx := context.Background()
	file := header +
		"王芳,420106199604202344,010620100001,120402,行政管理,zhuanshengben,0106,social\n" +
		"王芳,420106199604202344,010621200007,590201,行政管理,zhuanke,0106,system\n" +
		"阿依古丽·买买提,11010519491231002x,020019100003,A020212,企业财务管理,zhuanke,0200,social\n"
	res, err := store.Import(ctx, strings.NewReader(file))
	if err != nil || res.Added != 3 || res.Unchanged != 0 {
		t.Fatalf("first import: %+v, %v; want 3 added", res, err)
	}
	res, err = store.Import(ctx, strings.NewReader(file))
	if err != nil || res.Added != 0 || res.Unchanged != 3 {
		t.Fatalf("second import: %+v, %v; want 3 unchanged", res, err)
	}
	records, err := store.Lookup(ctx, "阿依古丽·买买提", "11010519491231002X", "020019100003")
	if err != nil || len(records) != 1 {
		t.Fatalf("lookup of an imported record (ID number stored upper-case): %v, %v", records, err)
	}
	records, err = store.Lookup(ctx, "王芳", "420106199604202344", "010621200007")
	if err != nil || len(records) != 2 {
		t.Fatalf("lookup: %v, %v; want both records", records, err)
	}
	if _, err := store.Lookup(ctx, "王芳", "420106199604202344", "020019100003"); !errors.Is(err, enrolled.ErrNotFound) {
		t.Fatalf("another person's ticket number: %v, want ErrNotFound", err)
	}
}

func TestImportRefusesABadFileWhole(t *testing.T) {
	ctx := context.Background()
	file := header +
		"李四,420106199503151234,030019100001,120402,行政管理,zhuanshengben,0300,social\n" + // good
		"李四,420106199503151235,030019100002,120402,行政管理,zhuanshengben,0300,social\n" + // checksum
		"李四,420106199503151234,03001910000,120402,行政管理,zhuanshengben,0300,social\n" + // 11 digits
		"李四,420106199503151234,030019100001,590201,行政管理,zhuanke,0300,social\n" + // repeats line 2
		"李四,420106199503151234,030019100004,999999,行政管理,zhuanke,0399,other\n" + // major, area, source
		"Li Si,420106199503151234,030019100005,590201,行政管理,zhuanshengben,0300,system\n" // name, level
	_, err := store.Import(ctx, strings.NewReader(file))
	var ie *enrolled.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("import of bad rows: %v, want an ImportError", err)
	}
	lines := map[int]bool{}
	for _, r := range ie.Rows {
		lines[r.Line] = true
	}
	for _, l := range []int{3, 4, 5, 6, 7} {
		if !lines[l] {
			t.Errorf("line %d not reported: %v", l, ie)
		}
	}
	if lines[2] {
		t.Errorf("good line 2 reported: %v", ie)
	}
	if _, err := store.Lookup(ctx, "李四", "420106199503151234", "030019100001"); !errors.Is(err, enrolled.ErrNotFound) {
		t.Fatalf("the good line of a bad file was loaded: %v", err)
	}

	if _, err := store.Import(ctx, strings.NewReader("name,id\n")); !errors.As(err, &ie) {
		t.Fatalf("wrong header: %v", err)
	}
}

func TestImportRefusesATicketNumberTakenByAnotherRecord(t *testing.T) {
	ctx := context.Background()
	first := header + "赵六,440524188001010014,050019100001,120402,行政管理,zhuanshengben,0500,social\n"
	if _, err := store.Import(ctx, strings.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	clash := header +
		"钱七,420106199503151234,050019100002,120402,行政管理,zhuanshengben,0500,social\n" +
		"钱七,420106199503151234,050019100001,120402,行政管理,zhuanshengben,0500,social\n"
	var ie *enrolled.ImportError
	if _, err := store.Import(ctx, strings.NewReader(clash)); !errors.As(err, &ie) || len(ie.Rows) != 1 || ie.Rows[0].Line != 3 {
		t.Fatalf("clash: %v, want line 3 reported", err)
	}
	if _, err := store.Lookup(ctx, "钱七", "420106199503151234", "050019100002"); !errors.Is(err, enrolled.ErrNotFound) {
		t.Fatalf("part of a refused file was loaded: %v", err)
	}
}

func TestImportRefusesAnIssuedTicketNumber(t *testing.T) {
	ctx := context.Background()
	// A number already issued to a new registration (the tickets table).
	var regID string
	err := database.Get(&regID, `
		INSERT INTO accounts (login_name, password_hash, security_question_id, security_answer_hash, role)
		VALUES ('issued@example.com', 'x', 1, 'x', 'applicant') RETURNING gen_random_uuid()::text`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = database.Exec(`
		INSERT INTO registrations (id, account_id, kind, status, name, id_number, gender, birth_date, phone, major_type, level,
			major_code, exam_area_code, year, sitting, terms_agreed_at, window_starts_at, window_ends_at)
		SELECT $1::uuid, id, 'new', 'completed', '周八', '420106199503151234', 'male', '1995-03-15', '13800000000', 'social',
			'zhuanke', '590201', '0700', 2027, 1, now(), now(), now() + interval '1 day'
		FROM accounts WHERE login_name = 'issued@example.com'`, regID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := database.Exec(`INSERT INTO tickets (ticket_number, registration_id) VALUES ('070027100001', $1)`, regID); err != nil {
		t.Fatal(err)
	}
	file := header + "吴九•十,11010519491231002X,070027100001,590201,行政管理,zhuanke,0700,social\n"
	var ie *enrolled.ImportError
	if _, err := store.Import(ctx, strings.NewReader(file)); !errors.As(err, &ie) || len(ie.Rows) != 1 || ie.Rows[0].Line != 2 {
		t.Fatalf("import of an issued ticket number: %v, want line 2 refused", err)
	}
	// Names are stored with the standard middle dot.
	file = header + "吴九•十,11010519491231002X,070027100002,590201,行政管理,zhuanke,0700,social\n"
	if _, err := store.Import(ctx, strings.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Lookup(ctx, "吴九·十", "11010519491231002X", "070027100002"); err != nil {
		t.Fatalf("lookup by the normalised name: %v", err)
	}
}
