module stock-buyer

go 1.19
