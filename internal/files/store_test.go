package files_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"zikao/internal/files"
)

// jpeg returns n bytes that sniff as a JPEG, different at each call.
func jpeg(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	copy(b, []byte{0xff, 0xd8, 0xff, 0xe0})
	return b
}

// row reads what PostgreSQL holds of a file.
type fileRow struct {
	Data      []byte     `db:"data"`
	KeyID     *string    `db:"key_id"`
	StoredAt  *time.Time `db:"stored_at"`
	PurgedAt  *time.Time `db:"purged_at"`
	Pending   int        `db:"pending"`
	SealedKey []byte     `db:"sealed_key"`
}

func readRow(t *testing.T, id string) fileRow {
	t.Helper()
	var r fileRow
	if err := database.Get(&r, `SELECT data, key_id, stored_at, purged_at, pending, sealed_key FROM files WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return r
}

// A file goes to the object store sealed: PostgreSQL keeps no bytes, the
// object is not the plaintext (nor holds it), and Get gives it back whole;
// the same bytes again are one row, one object.
func TestPutStoresSealedObjectOnce(t *testing.T) {
	ctx := context.Background()
	data := jpeg(t, 300<<10)
	before, err := store.Objects().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Put(ctx, data, files.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	r := readRow(t, id)
	if r.Data != nil || r.StoredAt == nil || r.KeyID == nil || *r.KeyID != "dev" || len(r.SealedKey) == 0 {
		t.Fatalf("row after Put: data %d bytes, stored_at %v, key %v", len(r.Data), r.StoredAt, r.KeyID)
	}
	sum := sha256.Sum256(data)
	raw, err := store.Objects().Raw(ctx, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(raw, data) || bytes.Contains(raw, data[64:1024]) {
		t.Fatal("the object store holds the plaintext")
	}
	f, err := store.Get(ctx, id)
	if err != nil || !bytes.Equal(f.Data, data) || f.ContentType != files.JPEG || f.Size != len(data) {
		t.Fatalf("Get: %d bytes %s, %v", len(f.Data), f.ContentType, err)
	}
	again, err := store.Put(ctx, data, files.JPEG)
	if err != nil || again != id {
		t.Fatalf("the same bytes again: %s, %v; want %s", again, err, id)
	}
	if after, err := store.Objects().Count(ctx); err != nil || after != before+1 {
		t.Fatalf("objects: %d before, %d after (%v); want one more", before, after, err)
	}
}

// With the object store down an upload fails with ErrUnavailable and
// writes nothing; the same upload once it is back is stored once.
func TestPutWhileStoreDown(t *testing.T) {
	ctx := context.Background()
	data := jpeg(t, 4096)
	var rows int
	if err := s3.Kill(); err != nil {
		t.Fatal(err)
	}
	_, err := store.Put(ctx, data, files.JPEG)
	if !errors.Is(err, files.ErrUnavailable) {
		t.Fatalf("Put with the store down: %v; want ErrUnavailable", err)
	}
	sum := sha256.Sum256(data)
	if err := database.Get(&rows, `SELECT count(*) FROM files WHERE sha256 = $1`, sum[:]); err != nil || rows != 0 {
		t.Fatalf("rows after the failed Put: %d, %v", rows, err)
	}
	if err := s3.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := store.Put(ctx, data, files.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	if r := readRow(t, id); r.Pending != 1 {
		t.Fatalf("pending %d after one successful upload", r.Pending)
	}
	if f, err := store.Get(ctx, id); err != nil || !bytes.Equal(f.Data, data) {
		t.Fatalf("Get after the store came back: %v", err)
	}
}

// Files of an older release (bytes in PostgreSQL) are read from there;
// Migrate moves them in batches; stopped half-way (its context cancelled
// mid-batch) and run again it moves every file once, byte-identical by
// digest, and leaves none in PostgreSQL.
func TestMigrateStoppedAndResumed(t *testing.T) {
	ctx := context.Background()
	const n = 30
	want := map[string][]byte{}
	for i := 0; i < n; i++ {
		data := jpeg(t, 2048+i)
		sum := sha256.Sum256(data)
		var id string
		err := database.Get(&id, `INSERT INTO files (id, sha256, content_type, size, data) VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING id`,
			sum[:], files.JPEG, len(data), data)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = data
	}
	for id, data := range want { // served from PostgreSQL meanwhile
		if f, err := store.Get(ctx, id); err != nil || !bytes.Equal(f.Data, data) {
			t.Fatalf("Get before migrating: %v", err)
		}
		break
	}
	first, err := store.Migrate(ctx, 10)
	if err != nil || first.Files != 10 || first.Left < n-10 {
		t.Fatalf("first batch: %+v, %v", first, err)
	}
	stopped, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(15 * time.Millisecond); cancel() }()
	half, _ := store.Migrate(stopped, 1000) // cut short somewhere
	t.Logf("the stopped run moved %d", half.Files)
	for {
		m, err := store.Migrate(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if m.Left == 0 {
			break
		}
	}
	for id, data := range want {
		r := readRow(t, id)
		if r.Data != nil || r.StoredAt == nil {
			t.Fatalf("file %s still in PostgreSQL", id)
		}
		f, err := store.Get(ctx, id)
		if err != nil || sha256.Sum256(f.Data) != sha256.Sum256(data) {
			t.Fatalf("file %s after migrating: %v", id, err)
		}
	}
}

// Rekey re-seals data keys with a new current key; the objects are not
// rewritten and every file reads back; the old key may then go.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	data := jpeg(t, 1000)
	id, err := store.Put(ctx, data, files.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	rotated := files.NewStore(database, store.Objects(), files.MustParseKeys("k2:"+testKey+","+files.DevKeys))
	for {
		m, err := rotated.Rekey(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		if m.Left == 0 {
			break
		}
	}
	if r := readRow(t, id); *r.KeyID != "k2" {
		t.Fatalf("key after rekey: %s", *r.KeyID)
	}
	onlyNew := files.NewStore(database, store.Objects(), files.MustParseKeys("k2:"+testKey))
	if f, err := onlyNew.Get(ctx, id); err != nil || !bytes.Equal(f.Data, data) {
		t.Fatalf("Get with only the new key: %v", err)
	}
	if _, err := store.Get(ctx, id); err == nil {
		t.Fatal("the old key alone still opens a re-sealed file")
	}
}

const testKey = "dGVzdC1rZXktMzItYnl0ZXMtbG9uZy0xMjM0NTY3ODk="

func TestParseKeys(t *testing.T) {
	for _, bad := range []string{"", "x", "a:b", "dev:" + testKey + ",dev:" + testKey, "a b:" + testKey, "k:dGVzdA=="} {
		if _, err := files.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	k, err := files.ParseKeys(" k2:" + testKey + ", " + files.DevKeys)
	if err != nil || k.Current != "k2" || k.Dev() {
		t.Fatalf("ParseKeys: %+v, %v", k, err)
	}
}

// A row that says stored whose object the store lost (a fault outside
// zikao) reads as an error, not as other bytes; the next upload of the
// same bytes puts the object again, under the same id.
func TestPutHealsALostObject(t *testing.T) {
	ctx := context.Background()
	data := jpeg(t, 5000)
	id, err := store.Put(ctx, data, files.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	client, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := client.RemoveObject(ctx, store.Objects().Bucket(), files.ObjectKey(sum[:]), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, id); err == nil || errors.Is(err, files.ErrUnavailable) {
		t.Fatalf("Get of a lost object: %v; want an error that is no outage", err)
	}
	if again, err := store.Put(ctx, data, files.JPEG); err != nil || again != id {
		t.Fatalf("Put again: %s, %v", again, err)
	}
	if f, err := store.Get(ctx, id); err != nil || !bytes.Equal(f.Data, data) {
		t.Fatalf("Get after the new upload: %v", err)
	}
}

// More uploads at once than MaxUploads wait for a slot and all succeed.
func TestManyUploadsAtOnce(t *testing.T) {
	ctx := context.Background()
	const n = 3 * files.MaxUploads
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		data := jpeg(t, 20000)
		go func() {
			_, err := store.Put(ctx, data, files.JPEG)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
