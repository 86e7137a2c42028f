package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestS3(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()

	began := time.Now()
	s, err := StartS3(ctx, S3Options{Dir: filepath.Join(dir, "s3"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	t.Logf("started on %s in %v", s.Endpoint(), time.Since(began).Round(time.Millisecond))

	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	const bucket, key = "uploads", "applicants/1/photo.jpg"
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	data := make([]byte, 5<<20+123) // more than one 4 MB chunk of the filer
	_, _ = rand.Read(data)
	if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "image/jpeg"}); err != nil {
		t.Fatalf("put: %v", err)
	}
	checkObject(t, c, bucket, key, data)

	url := "http://" + s.Endpoint() + "/" + bucket + "/" + key
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET: %s, want 403", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPut, url+".anon", strings.NewReader("x"))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous PUT: %s, want 403", resp.Status)
	}
	wrong, _ := minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, "wrong-secret", "")})
	if _, err := wrong.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		t.Error("a wrong secret key was accepted")
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		t.Fatal("it still answers after Kill")
	}
	began = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted after Kill in %v", time.Since(began).Round(time.Millisecond))
	checkObject(t, c, bucket, key, data)

	began = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(began).Round(time.Millisecond))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var size, used int64
	_ = filepath.WalkDir(filepath.Join(dir, "s3"), func(_ string, d fs.DirEntry, err error) error {
		if info, err2 := d.Info(); err == nil && err2 == nil && !d.IsDir() {
			size += info.Size()
			used += info.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	t.Logf("data folder: %d KB of files, %d KB on disk", size>>10, used>>10)
}

func checkObject(t *testing.T, c *minio.Client, bucket, key string, want []byte) {
	t.Helper()
	obj, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes back, not the %d put", len(got), len(want))
	}
}
