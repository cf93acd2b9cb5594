package main

import (
	"context"
	"crypto/rand"
	"fmt"
	mathrand "math/rand"
	"time"
)

// Event is the state machine's input to this step.
type Event struct {
	StockPrice int `json:"stock_price"`
}

// Order is a buy order.
type Order struct {
	ID        string `json:"id"`
	Price     int    `json:"price"`
	Type      string `json:"type"`
	Qty       int    `json:"qty"`
	Timestamp string `json:"timestamp"`
}

// handler is the state machine's step when the price is low: a buy order (made up, in this sample).
func handler(ctx context.Context, event Event) (Order, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Order{}, err
	}
	return Order{
		ID:        fmt.Sprintf("%x", id),
		Price:     event.StockPrice,
		Type:      "buy",
		Qty:       1 + mathrand.Intn(10),
		Timestamp: time.Now().UTC().Format(time.RFC3339),
	}, nil
}

func main() {
	start(handler)
}
