// Package files stores uploaded files (diploma reports, on-site photos, the
// files of online verification) once per content and refers to them by id:
// the bytes, encrypted, in an S3-compatible object store; their metadata in
// PostgreSQL. Workflows only ever see the id.
package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxSize is the largest file accepted: 5 MiB.
const MaxSize = 5 << 20

// Content types accepted somewhere.
const (
	PDF  = "application/pdf"
	JPEG = "image/jpeg"
	PNG  = "image/png"
)

var (
	// ErrTooLarge: the file is larger than MaxSize.
	ErrTooLarge = errors.New("file too large")
	// ErrType: the content is none of the accepted types.
	ErrType = errors.New("file type not accepted")
	// ErrEmpty: the file has no content.
	ErrEmpty = errors.New("file is empty")
	// ErrNotFound: no file with that id.
	ErrNotFound = errors.New("file not found")
	// ErrPurged: retention deleted the file's bytes.
	ErrPurged = errors.New("file purged")
	// ErrUnavailable: the object store did not answer or refused.
	ErrUnavailable = errors.New("object store unavailable")
)

// File is a stored file.
type File struct {
	ID          string `db:"id"`
	ContentType string `db:"content_type"`
	Size        int    `db:"size"`
	Data        []byte `db:"data"`
}

// Read reads at most MaxSize bytes of r and checks by content (not by name
// or declared type) that it is one of the accepted types.
func Read(r io.Reader, accepted ...string) ([]byte, string, error) {
	return ReadMax(r, MaxSize, accepted...)
}

// Video types accepted for online verification's video.
const (
	MP4  = "video/mp4"
	WebM = "video/webm"
)

// ReadMax reads at most max bytes of r and checks by content that it is
// one of the accepted types (Read, with another limit). Videos are told by
// their first box or header: MP4 (ISO base media, any brand) has ftyp at
// bytes 4–7, WebM (Matroska) starts with the EBML magic 1A 45 DF A3.
func ReadMax(r io.Reader, max int, accepted ...string) ([]byte, string, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, "", fmt.Errorf("read upload: %w", err)
	}
	if len(data) > max {
		return nil, "", ErrTooLarge
	}
	if len(data) == 0 {
		return nil, "", ErrEmpty
	}
	ct := sniff(data)
	for _, a := range accepted {
		if ct == a {
			return data, ct, nil
		}
	}
	return nil, "", ErrType
}

func sniff(data []byte) string {
	switch {
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return MP4
	case bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return WebM
	}
	return http.DetectContentType(data)
}
