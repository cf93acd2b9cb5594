package main

import (
	"context"
	"encoding/json"
)

// Request holds what this function reads of API Gateway's proxy request (see events/event.json).
type Request struct {
	HTTPMethod string `json:"httpMethod"`
	Path       string `json:"path"`
}

// Response is API Gateway's proxy response.
type Response struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

// handler answers GET /hello of the API.
func handler(ctx context.Context, req Request) (Response, error) {
	body, err := json.Marshal(map[string]string{"message": "hello world"})
	if err != nil {
		return Response{}, err
	}
	return Response{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}, nil
}

func main() {
	start(handler)
}
