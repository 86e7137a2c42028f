package workflows_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/worker"

	zworker "zikao/worker"
)

// histories are recorded from a real Temporal server by the API's end-to-end
// tests (ZIKAO_RECORD_HISTORIES=1 go test ./api/), one per path: those of
// the current workflow code in testdata, those of earlier releases (whose
// registrations may still be running) in testdata/v1 and so on.
func histories(t *testing.T, folder string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(folder, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d recorded histories in %s, want one per path (8)", len(files), folder)
	}
	return files
}

// releases are the folders of recorded histories, the current one first.
var releases = []string{"testdata", filepath.Join("testdata", "v4"), filepath.Join("testdata", "v3"), filepath.Join("testdata", "v2"), filepath.Join("testdata", "v1")}

// Every recorded history replays with the current workflow code: a change
// that would break running registrations fails here.
func TestReplayRecordedHistories(t *testing.T) {
	var files []string
	for _, folder := range releases {
		files = append(files, histories(t, folder)...)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			zworker.RegisterWorkflow(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// billableActions counts what Temporal Cloud bills in a history: the start,
// updates, timers, search-attribute upserts, activities, and one for each
// workflow task that ran local activities.
func billableActions(h *historypb.History) int {
	n := 0
	localTask := false // the commands of a workflow task follow its completion
	for _, e := range h.Events {
		switch e.EventType {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
			enumspb.EVENT_TYPE_TIMER_STARTED,
			enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
			enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			n++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			localTask = true
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if localTask {
				n++
			}
			localTask = false
		}
	}
	if localTask {
		n++
	}
	return n
}

// The cost of each path, in Temporal Cloud actions, stays within its budget.
func TestActionBudget(t *testing.T) {
	budget := map[string]int{
		"new-zhuanke":                          5,
		"new-zhuanke-expired":                  5,
		"enrolled":                             5,
		"new-zhuanshengben-found":              7,
		"new-zhuanshengben-reviewed":           16,
		"new-zhuanshengben-rejected-withdrawn": 16,
		"new-zhuanshengben-county-rejected":    22,
		"new-zhuanke-window-moved":             10,
		"new-zhuanshengben-annulled":           10,
		// Release 5: the area change is a step of its own (its update, the
		// workflow task of its local activity, the ExamArea upsert) beside
		// the reviewed path's; a window move is a step with its notice.
		"new-zhuanshengben-area-changed": 20,
		// Online verification (release 4): the start and the window's timer,
		// then per try its update and the workflow task of its local
		// activity (a failed try stays pre-registered: no search-attribute
		// upsert), per change of status an update, a local activity task
		// and an upsert.
		"online-match":                            5,  // 2 + a matching try (3)
		"online-not-in-records":                   7,  // 2 + the try (2) + the on-site check (3)
		"online-three-failures-identity-approved": 14, // 2 + three tries (6) + the request (3) + the approval (3)
		"online-identity-refused-onsite":          17, // 2 + three tries (6) + the request (3) + the refusal (3) + the on-site check (3)
		// Release 6: a write that waited out a 40 s outage under the county
		// review, as a regular activity (recorded by the fault tests of
		// internal/registering, up to the provincial review): the path so
		// far, plus the activity and the version marker's upsert.
		"new-zhuanshengben-outage-waited": 12,
	}
	recorded := map[string]bool{}
	for _, file := range histories(t, releases[0]) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		recorded[name] = true
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var h historypb.History
		if err := (temporalproto.CustomJSONUnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &h); err != nil {
			t.Fatal(err)
		}
		got := billableActions(&h)
		t.Logf("%-40s %2d actions", name, got)
		if max, ok := budget[name]; !ok || got > max {
			t.Errorf("%s: %d actions, budget %d", name, got, max)
		}
	}
	// Every path with a budget has its history of the current code.
	for name := range budget {
		if !recorded[name] {
			t.Errorf("no recorded history of %s in %s", name, releases[0])
		}
	}
}

// The recorded histories hold no personal data: no ID number, phone number,
// applicant name or report code of the tests that recorded them; since
// release 3 (testdata/v3), no reviewer's reason (of a report review, an
// annulment or a refused manual check) and no ticket number either.
func TestHistoriesHoldNoPersonalData(t *testing.T) {
	personal := `\d{17}[\dX]|(^|\D)1[3-9]\d{9}(\D|$)|欧阳|李雷|韩梅梅|李明|王芳|赵敏|ABCD1234EFGH|R2020001|C2020001`
	strict := regexp.MustCompile(personal + `|报告模糊|报告照片不清晰|证书编号与报告不符|冒用他人身份证号|人像与身份证照片不一致|0106\d{8}`)
	for _, folder := range releases[:2] {
		check(t, histories(t, folder), strict)
	}
	for _, folder := range releases[2:] {
		check(t, histories(t, folder), regexp.MustCompile(personal))
	}
}

func check(t *testing.T, files []string, personal *regexp.Regexp) {
	payload := regexp.MustCompile(`"data":\s*"([^"]*)"`)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if personal.Match(b) {
			t.Errorf("%s holds personal data", file)
		}
		for _, m := range payload.FindAllSubmatch(b, -1) {
			data, err := base64.StdEncoding.DecodeString(string(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			if found := personal.Find(data); found != nil {
				t.Errorf("%s: a payload holds %q", file, found)
			}
		}
	}
}
