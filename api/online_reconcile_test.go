package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"zikao/internal/files"
	"zikao/internal/identity"
	"zikao/internal/registering"
	"zikao/internal/registrations"
)

// A failed try leaves the status as it was, so the search attribute cannot
// show that the row is ahead of its workflow: a try written by a workflow
// task Temporal never committed (the worker died after the write, the
// update was lost) is found by the reconciler all the same, and set back
// with its try row and the tries it used.
func TestLostTryIsSetBack(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	c, id := preRegistered(t)
	ctx := context.Background()
	fs := server.Registering.Files
	var try registrations.Try
	for _, f := range []struct {
		into *string
		data []byte
		ct   string
	}{{&try.IDCardPhotoID, identity.SampleIDCardPhoto(41), files.JPEG}, {&try.VideoID, identity.SampleVideo(3001), files.MP4},
		{&try.PortraitID, identity.SamplePortrait(40), files.JPEG}} {
		fileID, err := fs.Put(ctx, f.data, f.ct)
		if err != nil {
			t.Fatal(err)
		}
		*f.into = fileID
	}
	try.ChallengeID, try.Result = uuid.NewString(), "face_mismatch"
	err := registrations.NewStore(database).Record(ctx, registrations.Transition{RegistrationID: id, Seq: 2,
		Status: "pre_registered", At: time.Now(), ByRole: "applicant", Note: "网上验证未通过：人脸比对不一致，剩余 2 次",
		UpdateID: "online-verification/lost", HistoryLength: 3,
		Online: &registrations.Online{TriesLeft: 2, LastResult: "face_mismatch"}, Try: &try})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.json("GET", "/registrations/"+id, nil); online(r)["tries_left"] != float64(2) {
		t.Fatalf("the lost try is in the row: %s", r.raw)
	}
	age(t, id)
	if sw := sweep(t); sw.Restored != 1 {
		t.Fatalf("sweep %+v, want one registration restored", sw)
	}
	r := c.json("GET", "/registrations/"+id, nil)
	if o := online(r); r.str("status") != "pre_registered" || len(r.body["history"].([]any)) != 1 ||
		o["tries_left"] != float64(3) || o["last_result"] != nil || o["available"] != true {
		t.Fatalf("after the sweep: %s", r.raw)
	}
	var rows int
	if err := database.Get(&rows, `SELECT count(*) FROM online_tries WHERE registration_id = $1`, id); err != nil || rows != 0 {
		t.Fatalf("online_tries rows after the sweep: %d, %v", rows, err)
	}
	// The workflow's own tries count as before.
	r = tryOnline(c, id, challenge(t, c, id), matching(42))
	want(t, r, 200, "")
	if r.str("status") != "completed" {
		t.Fatalf("a match after the sweep: %s", r.raw)
	}
}

// An open registration found in order is not described again at every
// sweep: only once it changes, or after Recheck (a day by default).
func TestReconcilerLooksAgainOnlyAfterRecheck(t *testing.T) {
	openWindows(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 0, 30))
	applicant := newApplicant(t)
	r := applicant.json("POST", "/registrations", newRegistration("zhuanke", "", "钱二八"))
	want(t, r, 202, "")
	id := r.str("registration_id")
	waitFor(t, applicant, id, "pre_registered")
	age(t, id)
	sweep(t)
	checkedAt := func() time.Time {
		var at time.Time
		if err := database.Get(&at, `SELECT checked_at FROM registrations WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := checkedAt()
	if time.Since(first) > time.Minute {
		t.Fatalf("the first sweep did not check the registration (checked %s ago)", time.Since(first))
	}
	age(t, id) // found in order two minutes ago, unchanged since
	aged := checkedAt()
	sweep(t)
	if !checkedAt().Equal(aged) {
		t.Fatal("an unchanged registration was checked again before Recheck")
	}
	rc := registering.NewReconciler(server.Registering, database)
	rc.Recheck = time.Minute
	if _, err := rc.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !checkedAt().After(aged) {
		t.Fatal("an unchanged registration was not checked again after Recheck")
	}
}
