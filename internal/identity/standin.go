package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // the stand-in decodes JPEG
	_ "image/png"  // and PNG photos
	"io"
	"mime/multipart"
	"net/http"

	"github.com/corona10/goimagehash"
)

// The stand-in's rules.
const (
	// MaxFaceDistance is the largest number of bits in which the average
	// hashes (8×8, grey) of a portrait and of an ID card photo differ when
	// the stand-in takes them for the same face.
	MaxFaceDistance = 10
	// MinLiveVideo is the size in bytes below which the stand-in takes a
	// video for a failed liveness check.
	MinLiveVideo = 2048
	// NotInRecordsSequence are the digits 15–17 of the ID numbers the
	// stand-in does not find in its records.
	NotInRecordsSequence = "999"
	// MaxRequest is the largest request the stand-in reads.
	MaxRequest = 30 << 20
	// maxPixels bounds the pictures the stand-in decodes.
	maxPixels = 20_000_000 // as the service layer checks the ID card photo
)

// StandIn answers verifications as the real service would, checking the
// same basic-auth credentials, by these rules: NotInRecords when digits
// 15–17 of the ID number are 999 (or it does not have 18 characters); else
// LivenessFailed when the video is smaller than MinLiveVideo; else Match
// when Compare finds the portrait and the ID card photo at most
// MaxFaceDistance apart, else FaceMismatch. A photo that is not a JPEG or
// PNG image, a missing field or file, or digits other than four, answer 400.
func StandIn(user, key string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		if u, k, ok := r.BasicAuth(); !ok || u != user || k != key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequest)
		if err := r.ParseMultipartForm(MaxRequest); err != nil {
			if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "bad request: not multipart/form-data", http.StatusBadRequest)
			return
		}
		defer r.MultipartForm.RemoveAll()
		result, err := decide(r.MultipartForm)
		if err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Response{Result: result})
	})
	return mux
}

// decide applies the stand-in's rules. Its errors name fields, never
// their values.
func decide(f *multipart.Form) (string, error) {
	value := func(name string) (string, error) {
		if v := f.Value[name]; len(v) == 1 && v[0] != "" {
			return v[0], nil
		}
		return "", fmt.Errorf("field %s missing", name)
	}
	id, err := value("id_number")
	if err != nil {
		return "", err
	}
	if _, err := value("name"); err != nil {
		return "", err
	}
	digits, err := value("digits")
	if err != nil {
		return "", err
	}
	if len(digits) != 4 || !allDigits(digits) {
		return "", errors.New("field digits is not 4 digits")
	}
	files := map[string][]byte{}
	for _, name := range []string{"id_card_photo", "video", "portrait"} {
		if files[name], err = file(f, name); err != nil {
			return "", err
		}
	}
	switch {
	case len(id) != 18 || id[14:17] == NotInRecordsSequence:
		return NotInRecords, nil
	case len(files["video"]) < MinLiveVideo:
		return LivenessFailed, nil
	}
	d, err := Compare(files["portrait"], files["id_card_photo"])
	if err != nil {
		return "", err
	}
	if d <= MaxFaceDistance {
		return Match, nil
	}
	return FaceMismatch, nil
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func file(f *multipart.Form, name string) ([]byte, error) {
	fh := f.File[name]
	if len(fh) != 1 {
		return nil, fmt.Errorf("file %s missing", name)
	}
	rd, err := fh[0].Open()
	if err != nil {
		return nil, fmt.Errorf("file %s unreadable", name)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("file %s unreadable", name)
	}
	return b, nil
}

// Compare returns the number of bits in which the average hashes (8×8,
// grey) of two JPEG or PNG pictures differ: 0 to 64, the stand-in's
// measure of how far the portrait's face is from the ID card photo's.
func Compare(portrait, idCardPhoto []byte) (distance int, err error) {
	p, err := averageHash(portrait, "portrait")
	if err != nil {
		return 0, err
	}
	c, err := averageHash(idCardPhoto, "id_card_photo")
	if err != nil {
		return 0, err
	}
	return p.Distance(c)
}

func averageHash(b []byte, what string) (*goimagehash.ImageHash, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s is not a JPEG or PNG image", what)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return nil, fmt.Errorf("%s is %d×%d pixels: empty or too large", what, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s is not a JPEG or PNG image", what)
	}
	return goimagehash.AverageHash(img)
}
