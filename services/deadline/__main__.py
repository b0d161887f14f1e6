from shared.serve import serve
from shared.settings import DeadlineSettings

if __name__ == "__main__":
    serve("services.deadline.main:create_app", DeadlineSettings())  # type: ignore[call-arg]
