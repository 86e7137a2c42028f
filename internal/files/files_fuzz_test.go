package files

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"
	"testing/iotest"
)

// FuzzRead: Read accepts a file only when it is 1 to MaxSize bytes whose
// content sniffs as one of the accepted types, and returns it unchanged
// with that type; otherwise it returns one of the package's errors and no
// data.
func FuzzRead(f *testing.F) {
	pdf := []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, make([]byte, 64)...)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for _, seed := range [][]byte{pdf, jpeg, png, nil, {0}, []byte("plain text"), []byte("<html><script>"),
		[]byte("GIF89a"), []byte("\xef\xbb\xbf%PDF-1.4"), []byte("%PDF\x00\xff\xfe"), []byte("\xff\xd8\xff"),
		[]byte("\xff\xd8"), []byte("PK\x03\x04"), append([]byte(" \t\r\n"), pdf...), bytes.Repeat([]byte{0}, 600)} {
		f.Add(seed, uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		var accepted []string
		for i, ct := range []string{PDF, JPEG, PNG} {
			if which&(1<<i) != 0 {
				accepted = append(accepted, ct)
			}
		}
		got, ct, err := Read(bytes.NewReader(data), accepted...)
		switch {
		case err == nil:
			if !bytes.Equal(got, data) || !slices.Contains(accepted, ct) || ct != http.DetectContentType(data) || len(data) > MaxSize {
				t.Fatalf("Read(%q, %v) = %q, %q", data, accepted, got, ct)
			}
		case len(data) == 0 && !errors.Is(err, ErrEmpty),
			len(data) > 0 && !errors.Is(err, ErrType),
			got != nil || ct != "":
			t.Fatalf("Read(%q, %v) = %q, %q, %v", data, accepted, got, ct, err)
		}
	})
}

// Read tells a file too large from a type and a failed read from both.
func TestReadLimitsAndFailures(t *testing.T) {
	big := append([]byte("%PDF-1.4\n"), make([]byte, MaxSize)...)
	if _, _, err := Read(bytes.NewReader(big), PDF); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d bytes: %v, want ErrTooLarge", len(big), err)
	}
	if _, ct, err := Read(bytes.NewReader(big[:MaxSize]), PDF); err != nil || ct != PDF {
		t.Errorf("%d bytes: %q, %v; want accepted", MaxSize, ct, err)
	}
	broken := errors.New("connection reset")
	if _, _, err := Read(iotest.ErrReader(broken), PDF); !errors.Is(err, broken) {
		t.Errorf("failed read: %v, want it wrapped", err)
	}
}
