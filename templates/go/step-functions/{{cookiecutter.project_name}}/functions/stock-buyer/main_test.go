package main

import (
	"context"
	"testing"
)

func TestTheBuyerBuysAtTheCheckedPrice(t *testing.T) {
	o, err := handler(context.Background(), Event{StockPrice: 42})
	if err != nil || o.Type != "buy" || o.Price != 42 || o.Qty < 1 || o.Qty > 10 {
		t.Fatalf("%+v %v", o, err)
	}
}
