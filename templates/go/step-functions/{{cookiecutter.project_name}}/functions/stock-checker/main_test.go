package main

import (
	"context"
	"testing"
)

func TestTheCheckerReturnsAPriceBetween0And100(t *testing.T) {
	for i := 0; i < 20; i++ {
		p, err := handler(context.Background(), nil)
		if err != nil || p.StockPrice < 0 || p.StockPrice > 100 {
			t.Fatalf("%+v %v", p, err)
		}
	}
}
