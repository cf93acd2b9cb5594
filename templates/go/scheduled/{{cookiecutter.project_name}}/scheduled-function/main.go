package main

import (
	"context"
	"log"
)

// Event is EventBridge's Scheduled Event (see events/event.json).
type Event struct {
	DetailType string   `json:"detail-type"`
	Time       string   `json:"time"`
	Resources  []string `json:"resources"`
}

// Result is what the run returns.
type Result struct {
	OK   bool   `json:"ok"`
	Time string `json:"time"`
}

// handler runs on the schedule in template.yaml.
func handler(ctx context.Context, event Event) (Result, error) {
	log.Printf("scheduled at %s by %v", event.Time, event.Resources)
	return Result{OK: true, Time: event.Time}, nil
}

func main() {
	start(handler)
}
