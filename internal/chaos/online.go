package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/google/uuid"

	"zikao/internal/identity"
	"zikao/internal/status"
	"zikao/workflows"
)

// Online identity verification (网上验证) as a client drives it: ask for a
// challenge, send a try whose files lead the identity service stand-in to
// the result the path wants, and read the answer. A try is retried with
// the same challenge and the same Idempotency-Key after no answer or a 5xx
// (503 verification_unavailable included: the service did not answer, no
// try was used, the challenge stays usable); a 409 challenge_expired (the
// challenge ran out while the try was retried) takes a new challenge and a
// new key.

// retryChallenge counts the new challenges (and keys) after a 409 challenge_expired.
const retryChallenge = "409 challenge_expired (new challenge, new key)"

// tryFiles are the three files of a try.
type tryFiles struct {
	idCard, video, portrait []byte
}

// tryFiles makes the files of the client's next try, leading to result:
// the applicant's sample portrait; the ID card photo of the same face
// (another face for face_mismatch); a video of 4 KB (1 KB, too short to
// pass the liveness check, for liveness_failed). Every file carries a tag
// unique to the try (a JPEG comment, bytes after the MP4 header): files are
// stored by their content, and two applicants do not upload the same bytes.
func (c *agent) tryFiles(result string) tryFiles {
	p := c.run.Plan
	tag := fmt.Sprintf("zikao chaos %s, registration %s, try %d, %s", c.d.run, p, c.tries+1, uuid.NewString())
	card, videoSize := p.Face, 4096
	switch result {
	case workflows.ResultFaceMismatch:
		card = p.Face + 1 + c.tries // another face (seeds differ by less than identity.SampleSeeds)
	case workflows.ResultLivenessFailed:
		videoSize = 1024
	}
	video := identity.SampleVideo(videoSize)
	copy(video[32:], tag)
	return tryFiles{
		idCard:   withComment(identity.SampleIDCardPhoto(card), tag),
		video:    video,
		portrait: withComment(identity.SamplePortrait(p.Face), tag),
	}
}

// withComment inserts a comment segment (COM) right after a JPEG's start
// of image: the picture stays the same, the bytes differ.
func withComment(jpeg []byte, text string) []byte {
	n := len(text) + 2
	out := make([]byte, 0, len(jpeg)+n+2)
	out = append(out, jpeg[:2]...)
	out = append(out, 0xFF, 0xFE, byte(n>>8), byte(n))
	out = append(out, text...)
	return append(out, jpeg[2:]...)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tryRequest is the multipart form of a try.
func tryRequest(path, challengeID, key string, f tryFiles) (request, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	err := w.WriteField("challenge_id", challengeID)
	for _, file := range []struct {
		field, name string
		data        []byte
	}{{"id_card_photo", "id_card.jpg", f.idCard}, {"video", "video.mp4", f.video}, {"portrait", "portrait.jpg", f.portrait}} {
		if err != nil {
			break
		}
		var fw interface{ Write([]byte) (int, error) }
		if fw, err = w.CreateFormFile(file.field, file.name); err == nil {
			_, err = fw.Write(file.data)
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return request{}, fmt.Errorf("build form: %w", err)
	}
	return request{method: http.MethodPost, path: path, body: buf.Bytes(), contentType: w.FormDataContentType(), key: key}, nil
}

// failedTries counts the client's failed tries answered so far (those that
// use one of the three).
func (c *agent) failedTries() int {
	n := 0
	for _, d := range c.run.Decisions {
		if d.Update == workflows.UpdateOnlineTry && usesATry(d.Result) {
			n++
		}
	}
	return n
}

func usesATry(result string) bool {
	return result == workflows.ResultFaceMismatch || result == workflows.ResultLivenessFailed
}

// tryOnline makes one try: a challenge, then the try, retried as the
// package comment says, and logs it once answered 200.
func (c *agent) tryOnline(ctx context.Context, st step) error {
	files := c.tryFiles(st.Result)
	deadline := time.Now().Add(c.d.api.timeout)
	attempts, challenges := 0, 0
	for {
		challengeID, err := c.challenge(ctx)
		if err != nil {
			return err
		}
		challenges++
		r, err := tryRequest(c.regPath("/online-verification"), challengeID, uuid.NewString(), files)
		if err != nil {
			return err
		}
		out, err := c.applicant.send(ctx, r, func(a answer, ambiguous bool) verdict {
			// An attempt without an answer may have been applied; its
			// retries then answer 200 (the same key), so a 409 after one
			// is unexpected: the registration tells.
			if ambiguous && c.tryApplied(ctx, st) {
				return wasApplied
			}
			return notApplying
		})
		attempts += out.attempts
		if err != nil {
			if ctx.Err() == nil && out.answer.status == http.StatusConflict && out.answer.code() == "challenge_expired" && time.Now().Before(deadline) {
				c.d.stats.retry(retryChallenge)
				continue
			}
			return err
		}
		d := decision{Update: workflows.UpdateOnlineTry, Key: r.key, AccountID: c.applicant.accountID, ByRole: workflows.ByApplicant,
			To: st.To, Attempts: attempts, Inferred: out.inferred, Result: st.Result, Portrait: sha256Hex(files.portrait), Challenges: challenges}
		c.run.Decisions = append(c.run.Decisions, d)
		c.tries++
		if out.inferred {
			return nil
		}
		return c.checkTryAnswer(st, out.answer)
	}
}

// checkTryAnswer checks a try's 200: completed with a ticket on a match;
// else still pre-registered with the result and the tries left.
func (c *agent) checkTryAnswer(st step, a answer) error {
	var v view
	if err := jsonDecode(a.body, &v); err != nil {
		return err
	}
	if a.status != http.StatusOK || v.Status != st.To {
		c.d.stats.anomaly("registration %s: a try (%s expected) answered %d with status %s, want 200 with %s", c.run.ID, st.Result, a.status, v.Status, st.To)
		return fmt.Errorf("registration %s: the try answered status %s, want %s", c.run.ID, v.Status, st.To)
	}
	if st.Result == workflows.ResultMatch {
		return c.checkTicket(v)
	}
	left := workflows.MaxOnlineTries - c.failedTries()
	if v.Online.LastResult == nil || *v.Online.LastResult != st.Result || v.Online.TriesLeft != left ||
		v.Online.Available != (st.Result != workflows.ResultNotInRecords && left > 0) {
		c.d.stats.anomaly("registration %s: a try answered last_result %s, tries_left %d, available %v; want %s, %d",
			c.run.ID, orNone(deref(v.Online.LastResult)), v.Online.TriesLeft, v.Online.Available, st.Result, left)
		return fmt.Errorf("registration %s: the try answered another result than %s", c.run.ID, st.Result)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// tryApplied tells from the registration whether the try st was applied.
func (c *agent) tryApplied(ctx context.Context, st step) bool {
	var v view
	if err := c.applicant.get(ctx, c.regPath(""), &v); err != nil {
		return false
	}
	if st.Result == workflows.ResultMatch {
		return v.Status == status.Completed
	}
	left := workflows.MaxOnlineTries - c.failedTries()
	if usesATry(st.Result) {
		left--
	}
	return v.Status == status.PreRegistered && deref(v.Online.LastResult) == st.Result && v.Online.TriesLeft == left
}

// challenge asks for the digits to read aloud (a new challenge voids the
// one before: a retry after no answer just makes another).
func (c *agent) challenge(ctx context.Context) (string, error) {
	out, err := c.applicant.send(ctx, request{method: http.MethodPost, path: c.regPath("/online-verification/challenge")}, nil)
	if err != nil {
		return "", err
	}
	var ch struct {
		ID     string `json:"challenge_id"`
		Digits string `json:"digits"`
	}
	if err := jsonDecode(out.answer.body, &ch); err != nil {
		return "", err
	}
	if out.answer.status != http.StatusCreated || ch.ID == "" || len(ch.Digits) != 4 {
		c.d.stats.anomaly("registration %s: a challenge answered %d without its id or 4 digits", c.run.ID, out.answer.status)
		return "", fmt.Errorf("registration %s: the challenge's answer has no challenge_id or digits", c.run.ID)
	}
	return ch.ID, nil
}

// identityReview is the office's manual check (人工核验) by the county
// reviewer of the area or the provincial reviewer: approved, or refused
// with identityRefusal.
func (c *agent) identityReview(ctx context.Context, st step) error {
	body := map[string]any{"approved": true}
	if !st.Approve {
		body = map[string]any{"approved": false, "reason": identityRefusal}
	}
	reviewer, by := c.staff.county[c.area], workflows.ByCountyReviewer
	if st.Provincial {
		reviewer, by = c.staff.provincial, workflows.ByProvincialReviewer
	}
	r := jsonRequest(http.MethodPost, c.regPath("/identity-review"), body, "")
	return c.decide(ctx, reviewer, st, workflows.UpdateIdentityReview, by, r, http.StatusOK)
}
