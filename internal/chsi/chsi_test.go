package chsi

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientAgainstStandIn(t *testing.T) {
	srv := httptest.NewServer(StandIn("u", "k", []Diploma{{IDNumber: "420106199503151234", Name: "李明", DiplomaNumber: "104871201806000123"}}))
	defer srv.Close()
	ctx := context.Background()

	c := NewClient(srv.URL, "u", "k", 5*time.Second)
	for _, tc := range []struct {
		id, name string
		want     bool
	}{
		{"420106199503151234", "李明", true},
		{"420106199503151234", "李四", false},
		{"11010519491231002X", "李明", false},
	} {
		got, err := c.HasDiploma(ctx, tc.id, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("HasDiploma(%s, %s) = %v, %v; want %v", tc.id, tc.name, got, err, tc.want)
		}
	}

	bad := NewClient(srv.URL, "u", "wrong", 5*time.Second)
	if _, err := bad.HasDiploma(ctx, "420106199503151234", "李明"); err == nil {
		t.Error("wrong credentials: want an error")
	}
}
