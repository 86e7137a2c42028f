package identity

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/bits"
)

// Sample pictures and videos, made up in code, for the demo, the chaos run
// and tests: no real person's data is needed to go through a verification.
//
// A sample portrait is a head and shoulders in front of a backdrop of light
// and dark blue tiles, on a checked jacket. The tiles carry the seed: the
// picture is cut into the 8×8 cells the average hash looks at, the 20 cells
// of the head are the same for every seed, and the other 44 cells form 22
// pairs of neighbours, one light and one dark, in an order given by a
// codeword of a shortened extended Golay code [22,10,8] (Manchester
// coding). Two codewords differ in at least 8 places, so the portraits of
// two seeds that differ modulo SampleSeeds have average hashes at least 16
// bits apart: far more than MaxFaceDistance. Every portrait has as many
// light as dark tiles, which keeps the hash's mean, hence its bits, steady.

// SampleSeeds is how many different sample faces there are: seeds equal
// modulo SampleSeeds draw the same picture.
const SampleSeeds = 1 << 10

const (
	portraitWidth, portraitHeight = 480, 640 // the size of the photo applicants upload
	cardWidth, cardHeight         = 358, 441 // the photo on the card, as the ID card office takes it
)

// SamplePortrait is a made-up applicant's photo: a 480×640 JPEG (under 100
// KB) on a blue background; the same seed gives the same bytes.
func SamplePortrait(seed int) []byte {
	return encodeJPEG(drawSample(portraitWidth, portraitHeight, seed), 90)
}

// SampleIDCardPhoto is the photo on the ID card of SamplePortrait(seed)'s
// person: the same picture at another size and JPEG quality, whose average
// hash is within MaxFaceDistance of the portrait's, so the stand-in answers
// Match for them (and FaceMismatch against a portrait of another seed).
func SampleIDCardPhoto(seed int) []byte {
	return encodeJPEG(drawSample(cardWidth, cardHeight, seed), 75)
}

// mp4Head is an MP4 file's ftyp box: brand mp42, compatible with mp42 and
// isom.
const mp4Head = "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"

// SampleVideo is n bytes that pass for an MP4 video: an ftyp box, then
// zeros (shorter than the box when n < 24). The stand-in answers
// LivenessFailed for videos under 2,048 bytes.
func SampleVideo(n int) []byte {
	v := make([]byte, max(n, 0))
	copy(v, mp4Head)
	return v
}

func encodeJPEG(img image.Image, quality int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(err) // writing to memory does not fail
	}
	return b.Bytes()
}

// golay is the generator polynomial of the cyclic Golay code [23,12,7]:
// x^11+x^10+x^6+x^5+x^4+x^2+1.
const golay = 0b110001110101

// sampleCode is the seed's codeword: m(x)·g(x) for the seed's 10 bits m
// (21 bits), then a parity bit (22 bits in all). Its nonzero codewords
// weigh 8 or more.
func sampleCode(seed int) uint32 {
	m := uint32(seed % SampleSeeds)
	if seed < 0 {
		m = uint32((seed%SampleSeeds + SampleSeeds) % SampleSeeds)
	}
	var c uint32
	for i := range 10 {
		if m&(1<<i) != 0 {
			c ^= golay << i
		}
	}
	return c | uint32(bits.OnesCount32(c)&1)<<21
}

// tileIndex numbers the 22 pairs of tiles outside the head: the cells of
// rows 0, 6 and 7, and of columns 0–1 and 6–7 of rows 1–5; the pair of a
// cell is (row, column/2). Cells of the head answer -1.
func tileIndex(row, col int) int {
	switch {
	case row == 0:
		return col / 2 // 0–3
	case row >= 6:
		return 4 + (row-6)*4 + col/2 // 4–11
	case col < 2:
		return 12 + (row - 1) // 12–16
	case col >= 6:
		return 17 + (row - 1) // 17–21
	}
	return -1
}

var (
	lightBlue  = color.RGBA{150, 200, 255, 255}
	darkBlue   = color.RGBA{20, 45, 140, 255}
	midBlue    = color.RGBA{70, 120, 210, 255} // behind the head
	lightCloth = color.RGBA{205, 200, 195, 255}
	darkCloth  = color.RGBA{40, 45, 70, 255}
	skin       = color.RGBA{235, 195, 165, 255}
	neckSkin   = color.RGBA{215, 170, 140, 255}
	hair       = color.RGBA{30, 25, 22, 255}
	lips       = color.RGBA{180, 80, 80, 255}
	eyeWhite   = color.RGBA{245, 245, 240, 255}
)

// drawSample paints the seed's picture at w×h; it works in coordinates
// relative to the size, so that every size gives the same average hash.
func drawSample(w, h, seed int) *image.RGBA {
	code := sampleCode(seed)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		v := (float64(y) + 0.5) / float64(h)
		for x := range w {
			u := (float64(x) + 0.5) / float64(w)
			img.SetRGBA(x, y, samplePixel(u, v, code))
		}
	}
	return img
}

// samplePixel is the colour at (u, v), both in [0, 1).
func samplePixel(u, v float64, code uint32) color.RGBA {
	row, col := int(v*8), int(u*8)
	if t := tileIndex(row, col); t >= 0 {
		light := code&(1<<t) != 0
		if col%2 == 1 {
			light = !light // a pair is one light and one dark tile
		}
		if row >= 6 && shoulders(u, v) {
			if light {
				return lightCloth
			}
			return darkCloth
		}
		if light {
			return lightBlue
		}
		return darkBlue
	}
	// The head, in the cells of rows 1–5 and columns 2–5: u in [0.25,
	// 0.75), v in [0.125, 0.75).
	face := ellipse(u, v, 0.5, 0.45, 0.215, 0.25)
	switch {
	case face:
		switch {
		case ellipse(u, v, 0.42, 0.42, 0.035, 0.012) || ellipse(u, v, 0.58, 0.42, 0.035, 0.012):
			if ellipse(u, v, 0.42, 0.42, 0.012, 0.01) || ellipse(u, v, 0.58, 0.42, 0.012, 0.01) {
				return hair // pupils
			}
			return eyeWhite
		case ellipse(u, v, 0.42, 0.385, 0.045, 0.006) || ellipse(u, v, 0.58, 0.385, 0.045, 0.006):
			return hair // eyebrows
		case ellipse(u, v, 0.5, 0.58, 0.06, 0.014):
			return lips
		case ellipse(u, v, 0.5, 0.5, 0.012, 0.035):
			return neckSkin // the nose's shadow
		}
		if v < 0.3 && !ellipse(u, v, 0.5, 0.34, 0.2, 0.12) {
			return hair // the fringe
		}
		return skin
	case ellipse(u, v, 0.5, 0.36, 0.24, 0.23):
		return hair
	case v > 0.62 && u > 0.43 && u < 0.57:
		return neckSkin
	}
	return midBlue
}

// shoulders reports whether (u, v), below the head, is on the jacket.
func shoulders(u, v float64) bool {
	d := u - 0.5
	if d < 0 {
		d = -d
	}
	return d < 0.22+(v-0.75)*2.2
}

func ellipse(u, v, cu, cv, ru, rv float64) bool {
	du, dv := (u-cu)/ru, (v-cv)/rv
	return du*du+dv*dv <= 1
}
