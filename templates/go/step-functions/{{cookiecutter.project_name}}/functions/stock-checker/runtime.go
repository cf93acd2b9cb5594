{% include "go/_runtime.go" %}
