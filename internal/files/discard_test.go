package files_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/testsuite"

	"zikao/internal/devstack"
	"zikao/internal/files"
	"zikao/internal/testenv"
)

var (
	database *sqlx.DB
	s3       *devstack.S3 // a real S3 server (SeaweedFS)
	store    *files.Store // over database and s3, bucket zikao-files-test
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(func(db *sqlx.DB, _ string, _ *testsuite.DevServer) int {
		database = db
		var stop func()
		var err error
		if s3, stop, err = testenv.S3(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
		store = testenv.Files(db, s3, "zikao-files-test")
		return m.Run()
	}, false))
}

// TestDiscardKeepsAnotherUpload: two requests upload the same bytes (one
// row, one id); the first one's Discard (its decision refused) must not
// remove the file the second is about to record; the second's Discard does.
func TestDiscardKeepsAnotherUpload(t *testing.T) {
	ctx := context.Background()
	s := store
	data := []byte("\xff\xd8\xff\xe0 the same bytes twice")
	a, err := s.Put(ctx, data, files.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, data, files.JPEG)
	if err != nil || a != b {
		t.Fatalf("second Put: %s, %v; want the same id %s", b, err, a)
	}
	if err := s.Discard(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b); err != nil {
		t.Fatalf("the other upload's file is gone after the first Discard: %v", err)
	}
	if err := s.Discard(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("Get after both Discards: %v; want ErrNotFound", err)
	}
	if err := s.Discard(ctx, b); err != nil {
		t.Fatalf("Discard of a file gone: %v", err)
	}
}
