package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corona10/goimagehash"
)

const (
	testID       = "420106199503151234"
	testName     = "李明"
	notInRecords = "420106199503159994" // digits 15–17: 999
)

// testFace paints a face-like pattern at w×h (in coordinates relative to
// the size): a light oval on a blue background, dark hair, eyes and mouth;
// inverted, every colour is turned over.
func testFace(w, h int, inverted bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	in := func(u, v, cu, cv, ru, rv float64) bool {
		du, dv := (u-cu)/ru, (v-cv)/rv
		return du*du+dv*dv <= 1
	}
	for y := range h {
		v := (float64(y) + 0.5) / float64(h)
		for x := range w {
			u := (float64(x) + 0.5) / float64(w)
			c := color.RGBA{40, 90, 200, 255} // background
			switch {
			case in(u, v, 0.42, 0.42, 0.04, 0.02), in(u, v, 0.58, 0.42, 0.04, 0.02), in(u, v, 0.5, 0.6, 0.08, 0.02):
				c = color.RGBA{20, 20, 20, 255} // eyes, mouth
			case in(u, v, 0.5, 0.47, 0.2, 0.26):
				c = color.RGBA{240, 200, 170, 255} // face
			case in(u, v, 0.5, 0.4, 0.24, 0.3):
				c = color.RGBA{25, 20, 15, 255} // hair
			case v > 0.8:
				c = color.RGBA{230, 230, 230, 255} // shirt
			}
			if inverted {
				c = color.RGBA{255 - c.R, 255 - c.G, 255 - c.B, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func testJPEG(t *testing.T, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testPNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testVideo is n bytes beginning with an MP4 ftyp box.
func testVideo(n int) []byte {
	v := bytes.Repeat([]byte{0x5a}, n)
	copy(v, "\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom")
	return v
}

// quickClient retries fast.
func quickClient(url, user, key string, timeout time.Duration) *Client {
	c := NewClient(url, user, key, timeout)
	c.Backoff = time.Millisecond
	return c
}

// checkPrivate fails when err's text holds personal data of the request.
func checkPrivate(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{testID, notInRecords, testName, "\x00\x00\x00", "ftyp"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds personal data %q", err, s)
		}
	}
}

func TestVerifyAgainstStandIn(t *testing.T) {
	srv := httptest.NewServer(StandIn("u", "k"))
	defer srv.Close()
	c := NewClient(srv.URL, "u", "k", 5*time.Second)

	portrait := testJPEG(t, testFace(480, 640, false), 90)
	cardPhoto := testPNG(t, testFace(240, 320, false))     // the same face, smaller, as PNG
	otherFace := testJPEG(t, testFace(358, 441, true), 80) // turned over: another face
	if d, err := Compare(portrait, cardPhoto); err != nil || d > MaxFaceDistance {
		t.Fatalf("portrait vs the same face scaled: distance %d, %v", d, err)
	}
	if d, err := Compare(portrait, otherFace); err != nil || d <= MaxFaceDistance {
		t.Fatalf("portrait vs another face: distance %d, %v", d, err)
	}
	ok := Request{IDNumber: testID, Name: testName, Digits: "0472", IDCardPhoto: cardPhoto, Video: testVideo(4096), Portrait: portrait}
	for _, tc := range []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"match", func(*Request) {}, Match},
		{"face mismatch", func(r *Request) { r.IDCardPhoto = otherFace }, FaceMismatch},
		{"short video", func(r *Request) { r.Video = testVideo(MinLiveVideo - 1) }, LivenessFailed},
		{"video just long enough", func(r *Request) { r.Video = testVideo(MinLiveVideo) }, Match},
		{"not in records", func(r *Request) { r.IDNumber = notInRecords }, NotInRecords},
		// Records come first, then liveness, then faces.
		{"not in records, short video, other face", func(r *Request) {
			r.IDNumber, r.Video, r.IDCardPhoto = notInRecords, testVideo(100), otherFace
		}, NotInRecords},
		{"short video, other face", func(r *Request) { r.Video, r.IDCardPhoto = testVideo(100), otherFace }, LivenessFailed},
		{"samples, same seed", func(r *Request) {
			r.Portrait, r.IDCardPhoto, r.Video = SamplePortrait(7), SampleIDCardPhoto(7), SampleVideo(MinLiveVideo)
		}, Match},
		{"samples, other seed", func(r *Request) { r.Portrait, r.IDCardPhoto = SamplePortrait(7), SampleIDCardPhoto(8) }, FaceMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			got, err := c.Verify(context.Background(), r)
			if err != nil || got != tc.want {
				t.Fatalf("Verify = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	t.Run("wrong credentials", func(t *testing.T) {
		var calls atomic.Int32
		counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			StandIn("u", "k").ServeHTTP(w, r)
		}))
		defer counting.Close()
		got, err := quickClient(counting.URL, "u", "wrong", 5*time.Second).Verify(context.Background(), ok)
		var status *StatusError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &status) || status.StatusCode != http.StatusUnauthorized || got != "" {
			t.Fatalf("Verify = %q, %v; want ErrUnavailable and a 401", got, err)
		}
		if calls.Load() != 1 {
			t.Errorf("401 tried %d times; want once", calls.Load())
		}
		checkPrivate(t, err)
	})

	t.Run("bad requests", func(t *testing.T) {
		for name, edit := range map[string]func(*Request){
			"portrait not an image":   func(r *Request) { r.Portrait = []byte("not a picture") },
			"card photo not an image": func(r *Request) { r.IDCardPhoto = testVideo(3000) },
			"portrait missing":        func(r *Request) { r.Portrait = nil },
			"no name":                 func(r *Request) { r.Name = "" },
			"digits not 4 digits":     func(r *Request) { r.Digits = "12a4" },
			"no digits":               func(r *Request) { r.Digits = "" },
			"portrait truncated":      func(r *Request) { r.Portrait = r.Portrait[:200] },
		} {
			t.Run(name, func(t *testing.T) {
				r := ok
				edit(&r)
				got, err := c.Verify(context.Background(), r)
				var status *StatusError
				if !errors.Is(err, ErrUnavailable) || !errors.As(err, &status) || status.StatusCode != http.StatusBadRequest {
					t.Fatalf("Verify = %q, %v; want a 400", got, err)
				}
				checkPrivate(t, err)
			})
		}
	})

	t.Run("not multipart", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Path, strings.NewReader(`{"id_number":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("u", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("JSON body: %s; want 400", resp.Status)
		}
	})
}

// TestVerifySends checks the request: the fields, the files and the
// credentials, as the service expects them.
func TestVerifySends(t *testing.T) {
	r := Request{IDNumber: testID, Name: testName, Digits: "0815", IDCardPhoto: SampleIDCardPhoto(1), Video: SampleVideo(3000), Portrait: SamplePortrait(1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, k, _ := req.BasicAuth()
		if req.Method != http.MethodPost || req.URL.Path != "/api/v1/identity-verifications" || u != "user" || k != "key" {
			t.Errorf("%s %s as %s:%s", req.Method, req.URL.Path, u, k)
		}
		if err := req.ParseMultipartForm(MaxRequest); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"id_number": r.IDNumber, "name": r.Name, "digits": r.Digits} {
			if got := req.FormValue(name); got != want {
				t.Errorf("field %s = %q; want %q", name, got, want)
			}
		}
		for name, want := range map[string][]byte{"id_card_photo": r.IDCardPhoto, "video": r.Video, "portrait": r.Portrait} {
			f, h, err := req.FormFile(name)
			if err != nil {
				t.Errorf("file %s: %v", name, err)
				continue
			}
			got, _ := io.ReadAll(f)
			f.Close()
			if !bytes.Equal(got, want) {
				t.Errorf("file %s: %d bytes differ from the %d sent", name, len(got), len(want))
			}
			if strings.Contains(h.Filename, testID) || strings.Contains(h.Filename, testName) {
				t.Errorf("file name %q holds personal data", h.Filename)
			}
		}
		fmt.Fprint(w, `{"result":"match"}`)
	}))
	defer srv.Close()
	if got, err := NewClient(srv.URL, "user", "key", 5*time.Second).Verify(context.Background(), r); err != nil || got != Match {
		t.Fatalf("Verify = %q, %v", got, err)
	}
}

// scripted answers the i-th call with answers[min(i, last)].
func scripted(t *testing.T, calls *atomic.Int32, answers ...func(http.ResponseWriter)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		i := int(calls.Add(1)) - 1
		answers[min(i, len(answers)-1)](w)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, "echo "+testID+" "+testName, code) }
}

func body(s string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { fmt.Fprint(w, s) }
}

func TestVerifyRetries(t *testing.T) {
	r := Request{IDNumber: testID, Name: testName, Digits: "1234", IDCardPhoto: []byte("card"), Video: []byte("video"), Portrait: []byte("portrait")}
	for _, tc := range []struct {
		name      string
		answers   []func(http.ResponseWriter)
		want      string // "" for an error
		wantCalls int32
	}{
		{"500 then OK", []func(http.ResponseWriter){status(500), body(`{"result":"face_mismatch"}`)}, FaceMismatch, 2},
		{"503, 429 then OK", []func(http.ResponseWriter){status(503), status(429), body(`{"result":"liveness_failed"}`)}, LivenessFailed, 3},
		{"garbage then OK", []func(http.ResponseWriter){body(`<html>`), body(`{"result":"not_in_records"}`)}, NotInRecords, 2},
		{"always 502", []func(http.ResponseWriter){status(502)}, "", 3},
		{"garbage JSON", []func(http.ResponseWriter){body(`{"result": "mat`)}, "", 3},
		{"not JSON, echoing the request", []func(http.ResponseWriter){body("id " + testID + " name " + testName)}, "", 3},
		{"unknown result", []func(http.ResponseWriter){body(`{"result":"maybe ` + testName + `"}`)}, "", 3},
		{"no result", []func(http.ResponseWriter){body(`{}`)}, "", 3},
		{"400, not retried", []func(http.ResponseWriter){status(400), body(`{"result":"match"}`)}, "", 1},
		{"403, not retried", []func(http.ResponseWriter){status(403), body(`{"result":"match"}`)}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := scripted(t, &calls, tc.answers...)
			got, err := quickClient(srv.URL, "u", "k", 5*time.Second).Verify(context.Background(), r)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("Verify = %q, %v; want %q", got, err, tc.want)
				}
			} else {
				if !errors.Is(err, ErrUnavailable) || got != "" {
					t.Fatalf("Verify = %q, %v; want ErrUnavailable", got, err)
				}
				checkPrivate(t, err)
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d calls; want %d", calls.Load(), tc.wantCalls)
			}
		})
	}

	t.Run("attempts and backoff", func(t *testing.T) {
		var calls atomic.Int32
		srv := scripted(t, &calls, status(500))
		c := NewClient(srv.URL, "u", "k", time.Second)
		if c.Attempts != 3 || c.Backoff != 200*time.Millisecond {
			t.Fatalf("defaults: %d attempts, backoff %s", c.Attempts, c.Backoff)
		}
		c.Attempts, c.Backoff = 4, 20*time.Millisecond
		start := time.Now()
		if _, err := c.Verify(context.Background(), r); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify: %v", err)
		}
		if took := time.Since(start); calls.Load() != 4 || took < 140*time.Millisecond { // 20 + 40 + 80 ms
			t.Fatalf("%d calls in %s; want 4 in 140 ms or more", calls.Load(), took)
		}
	})
}

func TestVerifyUnreachable(t *testing.T) {
	r := Request{IDNumber: testID, Name: testName, Digits: "1234", IDCardPhoto: []byte("card"), Video: []byte("video"), Portrait: []byte("portrait")}

	t.Run("slower than the timeout", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			calls.Add(1)
			_, _ = io.Copy(io.Discard, req.Body) // then the server sees the client leave
			select {
			case <-req.Context().Done():
			case <-time.After(2 * time.Second):
			}
			fmt.Fprint(w, `{"result":"match"}`)
		}))
		defer srv.Close()
		start := time.Now()
		got, err := quickClient(srv.URL, "u", "k", 50*time.Millisecond).Verify(context.Background(), r)
		if !errors.Is(err, ErrUnavailable) || got != "" {
			t.Fatalf("Verify = %q, %v; want ErrUnavailable", got, err)
		}
		if took := time.Since(start); took > time.Second || calls.Load() != 3 {
			t.Errorf("%d calls in %s; want 3 timed out attempts", calls.Load(), took)
		}
		checkPrivate(t, err)
	})

	t.Run("closed", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		got, err := quickClient(url, "u", "k", time.Second).Verify(context.Background(), r)
		if !errors.Is(err, ErrUnavailable) || got != "" {
			t.Fatalf("Verify = %q, %v; want ErrUnavailable", got, err)
		}
		checkPrivate(t, err)
	})

	t.Run("cancelled while waiting for the answer", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			select {
			case <-req.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		got, err := NewClient(srv.URL, "u", "k", 30*time.Second).Verify(ctx, r)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) || got != "" {
			t.Fatalf("Verify = %q, %v; want ErrUnavailable and context.Canceled", got, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("returned %s after the cancellation", took)
		}
	})

	t.Run("cancelled while backing off", func(t *testing.T) {
		var calls atomic.Int32
		srv := scripted(t, &calls, status(503))
		c := NewClient(srv.URL, "u", "k", 5*time.Second)
		c.Backoff = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Verify(ctx, r); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Verify: %v; want ErrUnavailable and context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took > time.Second || calls.Load() != 1 {
			t.Errorf("%d calls in %s; want 1, then a prompt return", calls.Load(), took)
		}
	})

	t.Run("cancelled before", func(t *testing.T) {
		var calls atomic.Int32
		srv := scripted(t, &calls, body(`{"result":"match"}`))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := NewClient(srv.URL, "u", "k", 5*time.Second).Verify(ctx, r); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Verify: %v", err)
		}
		if calls.Load() != 0 {
			t.Errorf("%d calls with a cancelled context", calls.Load())
		}
	})
}

func TestCompareRejectsNonImages(t *testing.T) {
	good := SamplePortrait(0)
	for name, b := range map[string][]byte{"empty": nil, "text": []byte("hello"), "video": SampleVideo(4096), "truncated JPEG": good[:len(good)/2]} {
		if _, err := Compare(good, b); err == nil {
			t.Errorf("%s as the ID card photo: no error", name)
		}
		if _, err := Compare(b, good); err == nil {
			t.Errorf("%s as the portrait: no error", name)
		}
	}
}

func TestSamplePortrait(t *testing.T) {
	for _, seed := range []int{0, 1, 2, 513, 1023, 123456, -5} {
		b := SamplePortrait(seed)
		if len(b) > 102_400 {
			t.Errorf("seed %d: %d bytes, more than 100 KB", seed, len(b))
		}
		if !bytes.Equal(b, SamplePortrait(seed)) {
			t.Errorf("seed %d: two calls, two pictures", seed)
		}
		img, format, err := image.Decode(bytes.NewReader(b))
		if err != nil || format != "jpeg" {
			t.Fatalf("seed %d: %s, %v", seed, format, err)
		}
		if got := img.Bounds().Size(); got != image.Pt(480, 640) {
			t.Errorf("seed %d: %v pixels; want 480×640", seed, got)
		}
		// The background is blue: in each top corner's 40×40 square, the
		// mean blue exceeds the mean red by 40 or more.
		for _, corner := range []image.Rectangle{image.Rect(0, 0, 40, 40), image.Rect(440, 0, 480, 40)} {
			var red, blue float64
			for y := corner.Min.Y; y < corner.Max.Y; y++ {
				for x := corner.Min.X; x < corner.Max.X; x++ {
					r, _, b, _ := img.At(x, y).RGBA()
					red, blue = red+float64(r>>8), blue+float64(b>>8)
				}
			}
			if n := float64(corner.Dx() * corner.Dy()); blue/n < red/n+40 {
				t.Errorf("seed %d, corner %v: mean blue %.0f, red %.0f", seed, corner, blue/n, red/n)
			}
		}
		card, format, err := image.DecodeConfig(bytes.NewReader(SampleIDCardPhoto(seed)))
		if err != nil || format != "jpeg" || card.Width == 480 {
			t.Errorf("seed %d: ID card photo %dx%d %s, %v", seed, card.Width, card.Height, format, err)
		}
	}
	if seedsEqual := bytes.Equal(SamplePortrait(3), SamplePortrait(3+SampleSeeds)); !seedsEqual {
		t.Error("seeds equal modulo SampleSeeds draw different pictures")
	}
}

// TestSampleFaces checks that the stand-in matches the portrait and the ID
// card photo of a seed, and of no two seeds.
func TestSampleFaces(t *testing.T) {
	seeds := []int{100, 255, 256, 511, 512, 1000, 1023, 4242, -1}
	for s := range 40 {
		seeds = append(seeds, s)
	}
	portraits, cards := make([]*goimagehash.ImageHash, len(seeds)), make([]*goimagehash.ImageHash, len(seeds))
	for i, s := range seeds {
		var err error
		if portraits[i], err = averageHash(SamplePortrait(s), "portrait"); err != nil {
			t.Fatal(err)
		}
		if cards[i], err = averageHash(SampleIDCardPhoto(s), "id_card_photo"); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := Compare(SamplePortrait(9), SampleIDCardPhoto(9)); err != nil || d > MaxFaceDistance {
		t.Fatalf("Compare(portrait 9, ID card photo 9) = %d, %v", d, err)
	}
	for i, a := range seeds {
		for j, b := range seeds {
			d, err := portraits[i].Distance(cards[j])
			if err != nil {
				t.Fatal(err)
			}
			same := (a-b)%SampleSeeds == 0
			if same && d > MaxFaceDistance || !same && d <= MaxFaceDistance {
				t.Errorf("portrait %d vs ID card photo %d: distance %d", a, b, d)
			}
			if !same && d < 2*8 {
				t.Errorf("portrait %d vs ID card photo %d: distance %d, less than the code's 16", a, b, d)
			}
		}
	}
}

// TestSampleCode checks the code behind the sample faces: any two
// codewords differ in 8 places or more.
func TestSampleCode(t *testing.T) {
	for m := 1; m < SampleSeeds; m++ {
		if w := bits.OnesCount32(sampleCode(m)); w < 8 || sampleCode(m) >= 1<<22 {
			t.Fatalf("codeword of %d: %022b, weight %d", m, sampleCode(m), w)
		}
	}
	if sampleCode(-1) != sampleCode(SampleSeeds-1) {
		t.Error("negative seeds are not taken modulo SampleSeeds")
	}
	seen := map[int]bool{}
	for row := range 8 {
		for col := range 8 {
			i := tileIndex(row, col)
			head := row >= 1 && row <= 5 && col >= 2 && col <= 5
			if head != (i < 0) || i >= 22 {
				t.Fatalf("cell %d,%d: tile %d", row, col, i)
			}
			if i >= 0 && col%2 == 0 {
				if seen[i] || tileIndex(row, col+1) != i {
					t.Fatalf("cell %d,%d: tile %d is not a pair", row, col, i)
				}
				seen[i] = true
			}
		}
	}
}

// TestSampleTiles checks, for every sample face, that the hash's bits of
// the tiles are the seed's codeword (drawn small, to be quick: the hash
// does not depend on the size).
func TestSampleTiles(t *testing.T) {
	for seed := range SampleSeeds {
		h, err := goimagehash.AverageHash(drawSample(120, 160, seed))
		if err != nil {
			t.Fatal(err)
		}
		code := sampleCode(seed)
		for row := range 8 {
			for col := range 8 {
				i := tileIndex(row, col)
				if i < 0 {
					continue
				}
				light := code&(1<<i) != 0 != (col%2 == 1)
				if bit := h.GetHash()&(1<<(63-(row*8+col))) != 0; bit != light {
					t.Fatalf("seed %d, cell %d,%d: hash bit %v; want %v", seed, row, col, bit, light)
				}
			}
		}
	}
}

func TestSampleVideo(t *testing.T) {
	for _, n := range []int{24, 2048, 100_000} {
		v := SampleVideo(n)
		if len(v) != n || string(v[4:8]) != "ftyp" || http.DetectContentType(v) != "video/mp4" {
			t.Errorf("SampleVideo(%d): %d bytes, %q, %s", n, len(v), v[:min(n, 8)], http.DetectContentType(v))
		}
	}
	if len(SampleVideo(10)) != 10 || len(SampleVideo(-1)) != 0 {
		t.Error("short sample videos")
	}
}
