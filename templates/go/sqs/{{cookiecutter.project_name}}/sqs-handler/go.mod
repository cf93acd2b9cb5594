module sqs-handler

go 1.19
