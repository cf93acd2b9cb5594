module scheduled-function

go 1.19
