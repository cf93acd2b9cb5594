package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestTheScheduledRunReportsItsTime(t *testing.T) {
	payload, err := os.ReadFile("../events/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		t.Fatal(err)
	}
	if e.DetailType != "Scheduled Event" {
		t.Fatalf("not a scheduled event: %q", e.DetailType)
	}
	got, err := handler(context.Background(), e)
	if err != nil || got != (Result{OK: true, Time: e.Time}) {
		t.Fatalf("%+v %v", got, err)
	}
}
