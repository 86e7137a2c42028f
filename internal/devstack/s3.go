package devstack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"zikao/internal/files"
)

// S3Binary returns the path of SeaweedFS's weed command, the S3 server of
// `zikao dev` and the tests, built (the first time, in about five minutes)
// from the Go module proxy as a tool of tools/seaweedfs/go.mod.
func S3Binary(ctx context.Context) (string, error) {
	return toolBinary(ctx, "tools/seaweedfs/go.mod", "weed", "SeaweedFS")
}

// S3Options says how to start the S3 server.
type S3Options struct {
	Dir                  string    // its data and settings; required, kept across starts
	Port                 int       // S3 port on 127.0.0.1; 0 picks a free one
	AccessKey, SecretKey string    // its only identity; either empty: both random
	Log                  io.Writer // its own output; nil discards it
}

// S3 is a running SeaweedFS (master, volume server, filer and S3 gateway in
// one process) serving S3 on 127.0.0.1:Port to its one identity only.
type S3 struct {
	Port                 int
	AccessKey, SecretKey string

	dir, bin  string
	args, env []string
	ports     []int // all of its ports
	log       *logTail
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when it has exited
	exitErr   error
}

// StartS3 starts SeaweedFS with its data in o.Dir and waits until a signed
// PUT and GET succeed: about 14 s on a new folder, 16 s on one with data
// (SeaweedFS takes no new writes for 15 s after a restart).
func StartS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Dir == "" {
		return nil, errors.New("start SeaweedFS: S3Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir) // weed resolves paths from its own folder
	if err != nil {
		return nil, fmt.Errorf("start SeaweedFS: %w", err)
	}
	o.Dir = dir
	bin, err := S3Binary(ctx)
	if err != nil {
		return nil, err
	}
	s := &S3{AccessKey: o.AccessKey, SecretKey: o.SecretKey, dir: o.Dir, bin: bin, log: &logTail{w: o.Log}}
	if s.AccessKey == "" || s.SecretKey == "" {
		s.AccessKey, s.SecretKey = rand.Text(), rand.Text()+rand.Text()
	}
	for len(s.ports) < 8 { // distinct ports: S3 first, then the others
		p, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("start SeaweedFS: pick free ports: %w", err)
		}
		if len(s.ports) == 0 && o.Port != 0 {
			p = o.Port
		}
		if !slices.Contains(s.ports, p) {
			s.ports = append(s.ports, p)
		}
	}
	p, data := s.ports, filepath.Join(o.Dir, "data")
	s.Port = p[0]
	if err := s.prepare(data); err != nil {
		return nil, fmt.Errorf("start SeaweedFS: %w", err)
	}
	s.args = []string{"-config_dir=" + o.Dir, "-logtostderr", "server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprint("-s3.port=", p[0]), fmt.Sprint("-s3.port.grpc=", p[1]), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3", "-s3.config=" + filepath.Join(o.Dir, "s3.json"), "-s3.autoCreateBucket=false",
		fmt.Sprint("-master.port=", p[2]), fmt.Sprint("-master.port.grpc=", p[3]), "-master.peers=none",
		"-master.volumeSizeLimitMB=64", "-master.telemetry=false",
		fmt.Sprint("-volume.port=", p[4]), fmt.Sprint("-volume.port.grpc=", p[5]), "-volume.max=0", "-volume.preStopSeconds=1",
		"-filer", fmt.Sprint("-filer.port=", p[6]), fmt.Sprint("-filer.port.grpc=", p[7])}
	// Over HTTP its filer and volume server accept only requests signed
	// with these keys, which only its own parts know.
	s.env = append(os.Environ(), "WEED_JWT_SIGNING_KEY="+rand.Text(), "WEED_JWT_SIGNING_READ_KEY="+rand.Text(),
		"WEED_JWT_FILER_SIGNING_KEY="+rand.Text(), "WEED_JWT_FILER_SIGNING_READ_KEY="+rand.Text())
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// prepare writes its one S3 identity and master.toml (a new bucket gets one
// volume, not SeaweedFS's 7), and hands the master state of an earlier start
// to the new master port: the master keeps it in data/m<its port>, and one
// that finds none starts a new cluster, which grows no volume for new buckets.
func (s *S3) prepare(data string) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	ids, err := json.Marshal(map[string]any{"identities": []any{map[string]any{"name": "admin",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"}}}})
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"s3.json": ids, "master.toml": []byte("[master.volume_growth]\ncopy_1 = 1\n")} {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	if old, _ := filepath.Glob(filepath.Join(data, "m[0-9]*")); len(old) == 1 {
		if err := os.Rename(old[0], filepath.Join(data, fmt.Sprint("m", s.ports[2]))); err != nil {
			return fmt.Errorf("take over the master state: %w", err)
		}
	}
	return nil
}

// Endpoint is the host:port of its S3 API (plain HTTP).
func (s *S3) Endpoint() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Objects is a bucket of this server, as the file store reaches it.
func (s *S3) Objects(bucket string) (*files.Objects, error) {
	return files.NewObjects(files.ObjectConfig{Endpoint: s.Endpoint(), Bucket: bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
}

// Client returns an S3 client signed with its credentials.
func (s *S3) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: false})
}

// Restart starts it again after Stop or Kill, on the same ports, data and
// credentials, and waits until it serves, as StartS3 does.
func (s *S3) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && !s.exited() {
		return errors.New("start SeaweedFS: it runs already")
	}
	for _, p := range s.ports { // weed takes long to give up on a port in use
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("start SeaweedFS: %w", err)
		}
		l.Close()
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Kill reaches all of it
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start SeaweedFS: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() { s.exitErr = cmd.Wait(); s.removeSockets(); close(done) }()
	if err := s.waitUntilUp(ctx); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("start SeaweedFS: %w; its last output:\n%s", err, s.log.buf)
	}
	return nil
}

// waitUntilUp puts and gets an object in a throw-away bucket, retrying for
// up to a minute, then removes both. It gives up on no request early: one
// still running inside SeaweedFS could write the object again later.
func (s *S3) waitUntilUp(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if err = probeS3(ctx, c); err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("it exited: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("no signed PUT and GET succeeded within a minute: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func probeS3(ctx context.Context, c *minio.Client) error {
	const bucket, key = "devstack-ready-probe", "probe"
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return err
	}
	if _, err := c.PutObject(ctx, bucket, key, strings.NewReader("ok"), 2, minio.PutObjectOptions{}); err != nil {
		return err
	}
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	b, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || string(b) != "ok" {
		return fmt.Errorf("the probe object read back as %q: %v", b, err)
	}
	if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return err
	}
	return c.RemoveBucket(ctx, bucket)
}

// Stop ends it (SIGTERM, then SIGKILL after 20 s) and waits for it;
// stopping it again does nothing.
func (s *S3) Stop() error { return s.end(syscall.SIGTERM, 20*time.Second) }

// Kill ends its process group at once with SIGKILL, as a crash would, and
// waits for it; Restart brings it back with its data.
func (s *S3) Kill() error { return s.end(syscall.SIGKILL, 0) }

func (s *S3) end(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.exited() {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	return nil
}

func (s *S3) exited() bool {
	select {
	case <-s.done:
		return true
	default:
	}
	return false
}

// removeSockets removes the Unix sockets SeaweedFS makes beside its ports,
// /tmp/seaweedfs-<part>-<port>.sock, which a killed one leaves behind.
func (s *S3) removeSockets() {
	for _, p := range s.ports {
		socks, _ := filepath.Glob(fmt.Sprintf("/tmp/seaweedfs-*-%d.sock", p))
		for _, f := range socks {
			os.Remove(f)
		}
	}
}

// logTail passes output on to w (when not nil) and keeps its last 4 KB.
// Only one process writes at a time, and buf is read once it has exited.
type logTail struct {
	w   io.Writer
	buf []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	if l.buf = append(l.buf, p...); len(l.buf) > 4096 {
		l.buf = slices.Clone(l.buf[len(l.buf)-4096:])
	}
	if l.w != nil {
		l.w.Write(p)
	}
	return len(p), nil
}
