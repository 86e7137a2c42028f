package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ObjectConfig says where the object store is: any S3-compatible store
// (SeaweedFS, MinIO, Ceph, a cloud's).
type ObjectConfig struct {
	Endpoint  string // host:port (ZIKAO_S3_ENDPOINT)
	Bucket    string // ZIKAO_S3_BUCKET
	AccessKey string // ZIKAO_S3_ACCESS_KEY
	SecretKey string // ZIKAO_S3_SECRET_KEY
	TLS       bool   // ZIKAO_S3_TLS
	Region    string // ZIKAO_S3_REGION: empty lets the client find it
}

// Objects is a bucket of an S3-compatible store holding files' bytes under
// their SHA-256 (content-addressed: the same content is one object).
type Objects struct {
	client *minio.Client
	bucket string
	// Timeout bounds one call to the store; a store that does not answer
	// within it is unavailable (503), never waited on for ever. An upload's
	// call holds a PostgreSQL connection (its row's transaction) meanwhile.
	Timeout time.Duration
}

// NewObjects returns the bucket of c. It does not connect: a store that is
// away fails the calls that need it, not the start of the API or worker.
func NewObjects(c ObjectConfig) (*Objects, error) {
	if c.Endpoint == "" || c.Bucket == "" {
		return nil, errors.New("object store: ZIKAO_S3_ENDPOINT and ZIKAO_S3_BUCKET are required")
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:     c.TLS,
		Region:     c.Region,
		MaxRetries: 2, // the caller's client retries an upload with its key
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", c.Endpoint, err)
	}
	return &Objects{client: client, bucket: c.Bucket, Timeout: 15 * time.Second}, nil
}

// Bucket is the bucket's name.
func (o *Objects) Bucket() string { return o.bucket }

// ObjectKey is the name of a file's object: its SHA-256 in hex.
func ObjectKey(sum []byte) string { return fmt.Sprintf("sha256/%x", sum) }

// put writes an object, creating the bucket the first time it is missing.
func (o *Objects) put(ctx context.Context, key string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	put := func() error {
		_, err := o.client.PutObject(ctx, o.bucket, key, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
		return err
	}
	err := put()
	if minio.ToErrorResponse(err).Code == minio.NoSuchBucket {
		err = o.client.MakeBucket(ctx, o.bucket, minio.MakeBucketOptions{})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil // another first upload made it meanwhile
		}
		if err == nil {
			err = put()
		}
	}
	if err != nil {
		return fmt.Errorf("%w: put an object: %w", ErrUnavailable, err) // not its key: a digest identifies a photo
	}
	return nil
}

// get reads an object whole.
func (o *Objects) get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	obj, err := o.client.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		defer obj.Close()
		var data []byte
		if data, err = io.ReadAll(obj); err == nil {
			return data, nil
		}
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, errMissing
	}
	return nil, fmt.Errorf("%w: get an object: %w", ErrUnavailable, err)
}

// errMissing: the store answered, without the object a row says it holds.
var errMissing = errors.New("object missing from the store")

// exists reports whether the store holds an object.
func (o *Objects) exists(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	_, err := o.client.StatObject(ctx, o.bucket, key, minio.StatObjectOptions{})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		return true, nil
	case code == minio.NoSuchKey || code == minio.NoSuchBucket:
		return false, nil
	}
	return false, fmt.Errorf("%w: look an object up: %w", ErrUnavailable, err)
}

// remove deletes an object; one already gone is no error.
func (o *Objects) remove(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := o.client.RemoveObject(ctx, o.bucket, key, minio.RemoveObjectOptions{}); err != nil &&
		minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("%w: remove an object: %w", ErrUnavailable, err)
	}
	return nil
}

// Raw returns an object's bytes as the store holds them (ciphertext): for
// tests and checks that the store never holds plaintext.
func (o *Objects) Raw(ctx context.Context, sum []byte) ([]byte, error) {
	return o.get(ctx, ObjectKey(sum))
}

// Count counts the objects in the bucket.
func (o *Objects) Count(ctx context.Context) (int, error) {
	all, err := o.List(ctx, -1)
	return len(all), err
}

// Object is an object of the bucket, as a listing shows it.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// List lists up to limit objects of the bucket (every one when limit < 1),
// by key.
func (o *Objects) List(ctx context.Context, limit int) ([]Object, error) {
	var out []Object
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing when it stops early
	for obj := range o.client.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			if minio.ToErrorResponse(obj.Err).Code == minio.NoSuchBucket {
				return nil, nil
			}
			return out, fmt.Errorf("list %s: %w", o.bucket, obj.Err)
		}
		out = append(out, Object{Key: obj.Key, Size: obj.Size, LastModified: obj.LastModified})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// Ready makes the bucket when it is missing and waits (up to ctx's end)
// until an object can be put in it and removed: a new bucket of some
// stores (SeaweedFS grows its first volume) is slow to take the first
// write, which should not fall on an applicant's upload.
func (o *Objects) Ready(ctx context.Context) error {
	for {
		err := o.put(ctx, "ready", []byte("ready"))
		if err == nil {
			return o.remove(ctx, "ready")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("object store not ready: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
