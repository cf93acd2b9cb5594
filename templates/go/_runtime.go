package main

// A client of the Lambda Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)
// with Go's standard library only: it asks for the next event, calls the handler and posts its
// result or its error, for as long as the process lives. Lambda runs the executable as `bootstrap`
// (runtime provided.al2023); `lamb local invoke` runs it the same way.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"
)

const runtimeAPIVersion = "2018-06-01"

// start serves invocations with handler until the process is stopped.
func start[E any, R any](handler func(context.Context, E) (R, error)) {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		log.Fatal("AWS_LAMBDA_RUNTIME_API is not set: run this as a Lambda function (lamb local invoke, or deployed)")
	}
	base := "http://" + api + "/" + runtimeAPIVersion + "/runtime"
	client := &http.Client{}
	for {
		resp, err := client.Get(base + "/invocation/next")
		if err != nil {
			log.Fatalf("runtime API: %v", err)
		}
		payload, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			log.Fatalf("runtime API: reading the event: %v", err)
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		result, err := invoke(handler, payload, resp.Header.Get("Lambda-Runtime-Deadline-Ms"))
		if err != nil {
			post(client, base+"/invocation/"+id+"/error", errorDocument(err))
			continue
		}
		post(client, base+"/invocation/"+id+"/response", result)
	}
}

// invoke decodes the event, calls the handler with a context that ends at Lambda's deadline and
// encodes its result.
func invoke[E any, R any](handler func(context.Context, E) (R, error), payload []byte, deadline string) ([]byte, error) {
	ctx := context.Background()
	if ms, err := strconv.ParseInt(deadline, 10, 64); err == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(ms))
		defer cancel()
	}
	var event E
	if err := json.Unmarshal(payload, &event); err != nil {
		return nil, fmt.Errorf("the event is not the JSON this function takes: %w", err)
	}
	result, err := handler(ctx, event)
	if err != nil {
		return nil, err
	}
	return json.Marshal(result)
}

func errorDocument(err error) []byte {
	doc, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": fmt.Sprintf("%T", err)})
	return doc
}

func post(client *http.Client, url string, body []byte) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		log.Fatalf("runtime API: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
