package registering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // the ID card photo may be a PNG
	"io"
	"log/slog"
	"strings"
	"time"

	"zikao/internal/accounts"
	"zikao/internal/catalog"
	"zikao/internal/files"
	"zikao/internal/identity"
	"zikao/internal/registrations"
	"zikao/internal/status"
	"zikao/workflows"
)

// Verifier is the citizen identity verification service (公民身份核验):
// identity.Client, or the stand-in behind it.
type Verifier interface {
	Verify(ctx context.Context, r identity.Request) (string, error)
}

// Codes of online verification's refusals, besides the workflow's.
const (
	CodeVerificationUnavailable = "verification_unavailable" // the identity service did not answer: no try used
	CodeChallengeExpired        = workflows.ErrChallengeExpired
)

// The rules of the three files of a try (api.md, version 1.2).
const (
	MaxIDCardPhoto   = 5 << 20  // JPEG or PNG
	MaxVideo         = 20 << 20 // MP4 or WebM
	MaxPortrait      = 102400   // JPEG, exactly PortraitWidth × PortraitHeight, blue background
	PortraitWidth    = 480
	PortraitHeight   = 640
	maxIDCardPixels  = 20_000_000 // what a phone's camera takes; more is no photo of a card
	blueCorner       = 40         // the side of each top corner square of the blue-background rule
	blueOverRedByMin = 40         // how much bluer than red those squares are, on average (0–255)
)

// OnlineChallenge gives the owner of a pre-registered registration the
// digits to read aloud in the video, valid 10 minutes; a newer challenge
// voids the older ones.
func (s *Service) OnlineChallenge(ctx context.Context, who accounts.Account, id string) (registrations.Challenge, error) {
	r, err := s.decision(ctx, who, id, status.StepOnlineTry) // a challenge is the first half of a try
	if err != nil {
		return registrations.Challenge{}, err
	}
	if err := OnlineOpen(r, time.Now()); err != nil {
		return registrations.Challenge{}, err
	}
	c, err := s.Registrations.NewChallenge(ctx, r.ID)
	return c, unavailable(err)
}

// OnlineOpen tells from the read model whether a try of online verification
// may be made now, and if not why (the workflow's validator decides in the
// end): the one rule that the service, the views and the pages follow.
func OnlineOpen(r registrations.Registration, now time.Time) error {
	switch {
	case r.Status != status.PreRegistered:
		return refuse(workflows.ErrNotPreRegistered)
	case r.OnlineClosed || r.OnlineTriesLeft <= 0:
		return refuse(workflows.ErrOnlineClosed)
	case !now.Before(r.WindowEndsAt):
		return &Refusal{Code: workflows.ErrOutsideWindow, Window: catalog.Window{StartsAt: r.WindowStartsAt, EndsAt: r.WindowEndsAt}}
	}
	return nil
}

// OnlineClosed tells from the read model that a pre-registered applicant's
// online verification is closed (its tries used, or closed by the identity
// service's answer): OnlineOpen's refusal for that reason.
func OnlineClosed(r registrations.Registration, now time.Time) bool {
	var refusal *Refusal
	return errors.As(OnlineOpen(r, now), &refusal) && refusal.Code == workflows.ErrOnlineClosed
}

// OnlineFiles are a try's three files as uploaded (nil where none was sent).
type OnlineFiles struct {
	ChallengeID string
	IDCardPhoto io.Reader // 身份证人像面照片: JPEG or PNG, ≤ 5 MB
	Video       io.Reader // 朗读视频: MP4 or WebM, ≤ 20 MB
	Portrait    io.Reader // 电子证件照: JPEG, 480 × 640, ≤ 100 KB, blue background
}

// VerifyOnline makes a try of online identity verification: it checks the
// files (a file that breaks its rule costs no try), claims the challenge
// for this request, stores the files, asks the identity service, and sends
// the try with its result to the workflow, which records it and, on a
// match, completes the registration with its ticket number. The same
// request again (its Idempotency-Key) is answered with what the first did:
// it never uses two tries. A service that does not answer costs no try.
func (s *Service) VerifyOnline(ctx context.Context, who accounts.Account, id, key string, in OnlineFiles) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepOnlineTry)
	if err != nil {
		return r, err
	}
	uid := updateID(workflows.UpdateOnlineTry, who, key)
	made, err := s.Registrations.Recorded(ctx, r.ID, uid)
	if err != nil {
		return r, unavailable(err)
	}
	if made {
		// Made before with this key: the workflow answers as the first
		// time, and the identity service is not asked again.
		return s.decide(ctx, r, workflows.UpdateOnlineTry, uid, workflows.OnlineTry{AccountID: who.ID})
	}
	if err := OnlineOpen(r, time.Now()); err != nil {
		return r, err // before anything is sent to the identity service
	}
	try, err := readTry(in)
	if err != nil {
		return r, err
	}
	t := workflows.OnlineTry{ChallengeID: strings.TrimSpace(in.ChallengeID), AccountID: who.ID}
	digits, err := s.Registrations.ClaimChallenge(ctx, r.ID, t.ChallengeID, uid)
	if errors.Is(err, registrations.ErrChallengeExpired) {
		return r, refuse(CodeChallengeExpired)
	}
	if err != nil {
		return r, unavailable(err)
	}
	// No try was made: the challenge stays usable, and the files go (Discard
	// keeps a file another request of the same bytes, such as a retry with
	// the same key, has stored meanwhile).
	release := func() {
		s.discard(ctx, func(ctx context.Context) error { return s.Registrations.ReleaseChallenge(ctx, t.ChallengeID, uid) },
			t.IDCardPhotoID, t.VideoID, t.PortraitID)
	}
	for _, f := range []struct {
		id   *string
		file file
	}{{&t.IDCardPhotoID, try.idCard}, {&t.VideoID, try.video}, {&t.PortraitID, try.portrait}} {
		if *f.id, err = s.Files.Put(ctx, f.file.data, f.file.contentType); err != nil {
			release()
			return r, unavailable(err)
		}
	}
	vctx, cancel := context.WithTimeout(ctx, s.VerifyTimeout)
	t.Result, err = s.Identity.Verify(vctx, identity.Request{IDNumber: r.IDNumber, Name: r.Name, Digits: digits,
		IDCardPhoto: try.idCard.data, Video: try.video.data, Portrait: try.portrait.data})
	cancel()
	if err != nil {
		release()
		slog.WarnContext(ctx, "identity verification service unavailable: no try made", "registration_id", r.ID, "error", err)
		return r, fmt.Errorf("%w: %w", &Refusal{Code: CodeVerificationUnavailable}, err)
	}
	now, err := s.decide(ctx, r, workflows.UpdateOnlineTry, uid, t)
	if _, refused := err.(*Refusal); refused {
		s.discard(ctx, nil, t.IDCardPhotoID, t.VideoID, t.PortraitID)
	}
	return now, err
}

type file struct {
	data        []byte
	contentType string
}

type tryFiles struct{ idCard, video, portrait file }

// readTry reads and checks the three files of a try, each against its rule,
// and says beside each field what is wrong.
func readTry(in OnlineFiles) (tryFiles, error) {
	f := Fields{}
	var t tryFiles
	read := func(field string, r io.Reader, max int, label, labelEN string, accepted ...string) file {
		if r == nil {
			f.Add(field, "请上传"+label, labelEN+" is required")
			return file{}
		}
		data, ct, err := files.ReadMax(r, max, accepted...)
		switch {
		case errors.Is(err, files.ErrTooLarge):
			f.Add(field, fmt.Sprintf("%s不能超过 %s", label, size(max)), fmt.Sprintf("%s must be %s at most", labelEN, size(max)))
		case errors.Is(err, files.ErrEmpty):
			f.Add(field, label+"为空", labelEN+" is empty")
		case errors.Is(err, files.ErrType):
			f.Add(field, label+"格式不正确（"+formats(accepted)+"）", labelEN+" must be "+formats(accepted))
		case err != nil:
			f.Add(field, "无法读取"+label, labelEN+" could not be read")
		}
		return file{data: data, contentType: ct}
	}
	t.idCard = read("id_card_photo", in.IDCardPhoto, MaxIDCardPhoto, "身份证人像面照片", "the ID card photo", files.JPEG, files.PNG)
	t.video = read("video", in.Video, MaxVideo, "朗读视频", "the video", files.MP4, files.WebM)
	t.portrait = read("portrait", in.Portrait, MaxPortrait, "电子证件照", "the portrait", files.JPEG)
	if t.portrait.data != nil {
		checkPortrait(f, "portrait", t.portrait.data)
	}
	if t.idCard.data != nil {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(t.idCard.data))
		switch {
		case err != nil:
			f.Add("id_card_photo", "身份证人像面照片无法解码，请重新拍摄", "the ID card photo is not a readable image")
		case cfg.Width*cfg.Height > maxIDCardPixels:
			f.Add("id_card_photo", "身份证人像面照片像素过多（不超过 2000 万像素）", "the ID card photo has too many pixels (20 megapixels at most)")
		}
	}
	if strings.TrimSpace(in.ChallengeID) == "" {
		f.Add("challenge_id", "请先获取朗读数字", "challenge_id is required: ask for the digits to read first")
	}
	return t, f.Err()
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d KB", n/1024)
}

func formats(types []string) string {
	names := map[string]string{files.JPEG: "JPG", files.PNG: "PNG", files.MP4: "MP4", files.WebM: "WebM", files.PDF: "PDF"}
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = names[t]
	}
	return strings.Join(out, "/")
}

// checkPortrait applies the electronic ID photo's rules: exactly 480 × 640
// pixels, and a blue background: in each of the two top corner squares of
// 40 × 40 pixels the mean blue exceeds the mean red by at least 40.
func checkPortrait(f Fields, field string, data []byte) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		f.Add(field, "电子证件照无法解码，请上传 JPG 照片", "the portrait is not a readable JPEG")
		return
	}
	if cfg.Width != PortraitWidth || cfg.Height != PortraitHeight {
		f.Add(field, fmt.Sprintf("电子证件照须为 %d×%d 像素（宽×高），上传的是 %d×%d", PortraitWidth, PortraitHeight, cfg.Width, cfg.Height),
			fmt.Sprintf("the portrait must be %d × %d pixels (width × height); this one is %d × %d", PortraitWidth, PortraitHeight, cfg.Width, cfg.Height))
		return
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		f.Add(field, "电子证件照无法解码，请上传 JPG 照片", "the portrait is not a readable JPEG")
		return
	}
	b := img.Bounds()
	for _, x0 := range []int{b.Min.X, b.Max.X - blueCorner} {
		if !bluer(img, image.Rect(x0, b.Min.Y, x0+blueCorner, b.Min.Y+blueCorner)) {
			f.Add(field, "电子证件照须为蓝色背景", "the portrait must have a blue background")
			return
		}
	}
}

// bluer reports whether the mean blue of a square exceeds its mean red by
// at least blueOverRedByMin.
func bluer(img image.Image, sq image.Rectangle) bool {
	var red, blue, n int
	for y := sq.Min.Y; y < sq.Max.Y; y++ {
		for x := sq.Min.X; x < sq.Max.X; x++ {
			r, _, b, _ := img.At(x, y).RGBA()
			red, blue, n = red+int(r>>8), blue+int(b>>8), n+1
		}
	}
	return blue-red >= blueOverRedByMin*n
}

// RequestIdentityReview asks the office to check the last try's materials
// by eye (人工核验), after three failed tries, once.
func (s *Service) RequestIdentityReview(ctx context.Context, who accounts.Account, id, key string) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepAskIdentityReview)
	if err != nil {
		return r, err
	}
	return s.decide(ctx, r, workflows.UpdateRequestIdentityReview, updateID(workflows.UpdateRequestIdentityReview, who, key),
		workflows.IdentityReviewRequest{AccountID: who.ID})
}

// reviewerRole is the role a reviewer's step is recorded with.
func reviewerRole(who accounts.Account) string {
	if who.Role == accounts.RoleProvincialReviewer {
		return workflows.ByProvincialReviewer
	}
	return workflows.ByCountyReviewer
}

// IdentityReview applies the office's manual check: approved completes the
// registration (the last try's portrait becomes its photo); refused, with a
// reason the applicant is shown, sends the applicant on site.
func (s *Service) IdentityReview(ctx context.Context, who accounts.Account, id, key string, d Decision) (registrations.Registration, error) {
	r, err := s.decision(ctx, who, id, status.StepIdentityReview)
	if err != nil {
		return r, err
	}
	if err := decisionFields(&d); err != nil {
		return r, err
	}
	update := workflows.UpdateIdentityReview
	return s.decideWithReason(ctx, r, update, updateID(update, who, key), d.rejection(), func(reasonID string) any {
		return workflows.IdentityReview{Approved: *d.Approved, ReasonID: reasonID, ByRole: reviewerRole(who), AccountID: who.ID,
			OfficeArea: officeArea(who)}
	})
}

// Kinds of the files of a try, as the API names them.
const (
	FileIDCardPhoto = files.KindIDCardPhoto
	FilePortrait    = files.KindPortrait
	FileVideo       = files.KindVideo
)

// OnlineFile returns a file of the last try, for reviewers in scope while
// the manual check waits for them: these are sensitive personal data.
func (s *Service) OnlineFile(ctx context.Context, who accounts.Account, id, kind string) (files.File, error) {
	r, err := s.decision(ctx, who, id, status.StepIdentityReview) // the manual check's materials
	if err != nil {
		return files.File{}, err
	}
	if r.Status != status.IdentityReview {
		return files.File{}, refuse(workflows.ErrNotAwaitingReview)
	}
	t, err := s.Registrations.LastTry(ctx, r.ID)
	if errors.Is(err, registrations.ErrNotFound) {
		return files.File{}, refuse(CodeNoReport)
	}
	if err != nil {
		return files.File{}, unavailable(err)
	}
	fileID := map[string]string{FileIDCardPhoto: t.IDCardPhotoID, FilePortrait: t.PortraitID, FileVideo: t.VideoID}[kind]
	if fileID == "" {
		return files.File{}, refuse(CodeNoReport)
	}
	return s.fetch(ctx, who, r.ID, kind, fileID)
}
