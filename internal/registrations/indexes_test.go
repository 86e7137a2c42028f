package registrations_test

import (
	"regexp"
	"slices"
	"testing"

	"zikao/internal/status"
)

// The partial indexes the migrations spell by hand name the same states as
// the conditions the code uses (package status): one open registration per
// account, one registration holding an ID number per ID number.
func TestPartialIndexesMatchTheStates(t *testing.T) {
	quoted := regexp.MustCompile(`'([a-z_]+)'`)
	states := func(sql string) []string {
		var out []string
		for _, m := range quoted.FindAllStringSubmatch(sql, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	for index, cond := range map[string]string{
		"registrations_open_account_key":     status.OpenSQL,
		"registrations_active_id_number_key": status.HoldsIDNumberSQL,
	} {
		var def string
		if err := database.Get(&def, `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, index); err != nil {
			t.Fatalf("%s: %v", index, err)
		}
		if got, want := states(def), states(cond); !slices.Equal(got, want) {
			t.Errorf("%s excludes %v; the code's condition %v", index, got, want)
		}
	}
}
