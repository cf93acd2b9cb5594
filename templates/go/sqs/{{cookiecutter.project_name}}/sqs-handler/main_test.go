package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func sample(t *testing.T) Event {
	payload, err := os.ReadFile("../events/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestABatchOfGoodMessagesHasNoFailures(t *testing.T) {
	resp, err := handler(context.Background(), sample(t))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestAMessageThatFailsIsReportedForRedelivery(t *testing.T) {
	e := sample(t)
	e.Records[0].Body = "fail"
	resp, _ := handler(context.Background(), e)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != e.Records[0].MessageID {
		t.Fatalf("%+v", resp)
	}
}
