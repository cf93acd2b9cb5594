package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestGetHelloAnswersHelloWorld(t *testing.T) {
	payload, err := os.ReadFile("../events/event.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := invoke(handler, payload, "")
	if err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Body != `{"message":"hello world"}` {
		t.Fatalf("unexpected response %+v", resp)
	}
	if _, err := handler(context.Background(), Request{HTTPMethod: "GET", Path: "/hello"}); err != nil {
		t.Fatal(err)
	}
}
