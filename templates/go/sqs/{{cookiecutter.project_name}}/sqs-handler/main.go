package main

import (
	"context"
	"encoding/json"
	"log"
)

// Event is an SQS batch (see events/event.json).
type Event struct {
	Records []struct {
		MessageID string `json:"messageId"`
		Body      string `json:"body"`
	} `json:"Records"`
}

// BatchItemFailure names a message SQS should deliver again.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// Response reports the messages that failed (the event source mapping has ReportBatchItemFailures).
type Response struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// handler logs the body of each message; one whose body is `fail` is reported as failed.
func handler(ctx context.Context, event Event) (Response, error) {
	failures := []BatchItemFailure{}
	for _, r := range event.Records {
		if r.Body == "fail" {
			failures = append(failures, BatchItemFailure{ItemIdentifier: r.MessageID})
			continue
		}
		line, _ := json.Marshal(map[string]string{"messageId": r.MessageID, "body": r.Body})
		log.Println(string(line))
	}
	return Response{BatchItemFailures: failures}, nil
}

func main() {
	start(handler)
}
