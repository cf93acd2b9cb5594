module stock-checker

go 1.19
