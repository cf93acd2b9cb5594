def greet(greeting: str, who: str) -> str:
    return f"{greeting} from {who}"
