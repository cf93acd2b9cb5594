package main

import (
	"context"
	"math/rand"
	"time"
)

// Price is the state machine's first step's output.
type Price struct {
	StockPrice int `json:"stock_price"`
}

var random = rand.New(rand.NewSource(time.Now().UnixNano()))

// handler is the first step of the state machine: a stock's price (a random one, in this sample).
func handler(ctx context.Context, event map[string]interface{}) (Price, error) {
	return Price{StockPrice: random.Intn(101)}, nil
}

func main() {
	start(handler)
}
